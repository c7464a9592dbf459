"""Broadcasting in one place: sum_to undoes what broadcasting did, for every shape pair."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import flowgrad as fg
from flowgrad.autograd.broadcast import broadcast_shape, sum_to
from flowgrad.errors import ShapeError


# a shared 2-core machine can be slow to generate examples: that is not a failure
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=3))
def test_sum_to_inverts_broadcast(shapes):
    a_shape, b_shape = shapes.input_shapes
    out_shape = broadcast_shape("add", a_shape, b_shape)
    assert out_shape == shapes.result_shape
    g = np.random.default_rng(0).standard_normal(out_shape)
    ga = sum_to(g, a_shape)
    assert ga.shape == a_shape
    # sum_to is the adjoint of broadcasting: <broadcast(v), g> == <v, sum_to(g)>
    v = np.random.default_rng(1).standard_normal(a_shape)
    assert np.isclose((np.broadcast_to(v, out_shape) * g).sum(), (v * ga).sum())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
def test_binary_op_gradients_have_input_shapes(shapes):
    a_shape, b_shape = shapes.input_shapes
    a = fg.randn(a_shape, dtype=fg.float64, requires_grad=True)
    b = fg.randn(b_shape, dtype=fg.float64, requires_grad=True)
    (a * b + a).sum().backward()
    assert a.grad.shape == a_shape and b.grad.shape == b_shape
    np.testing.assert_allclose(a.grad.numpy(), sum_to(np.broadcast_to(b.numpy(force=True) + 1,
                                                                      shapes.result_shape),
                                                      a_shape))


def test_broadcast_error_names_dimension():
    with pytest.raises(ShapeError, match=r"mul: shapes \(2, 3\) and \(4, 3\) cannot be broadcast "
                                         r"\(dimension -2: 2 vs 4\)"):
        broadcast_shape("mul", (2, 3), (4, 3))


def test_sum_to_rejects_non_broadcast_gradients():
    with pytest.raises(ShapeError, match="does not reduce"):
        sum_to(np.ones((3, 4)), (3, 5), "Op")
