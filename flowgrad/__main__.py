from flowgrad.cli import main

raise SystemExit(main())
