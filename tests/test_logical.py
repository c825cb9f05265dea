"""growjax.logical: the rule walk on dicts of mesh axis sizes (no devices)."""

import math

import hypothesis
import hypothesis.strategies as st
import pytest

from growjax import logical

MESH = dict(data=2, fsdp=2, tensor=2)


def spec(axes, shape, sizes=MESH, rules=logical.RULES):
  return logical.spec(axes, shape, sizes, rules)


def test_embed_goes_to_fsdp_and_mlp_heads_vocab_to_tensor():
  assert spec(("layers", "embed", "mlp"), (2, 16, 32)) == (
      None, "fsdp", "tensor")
  assert spec(("layers", "embed", "heads", "head_dim"), (2, 16, 2, 8)) == (
      None, "fsdp", "tensor", None)
  assert spec(("vocab", "embed"), (64, 16)) == ("tensor", "fsdp")
  assert spec(("batch", "time"), (8, 16)) == (("data", "fsdp"), None)


def test_non_divisible_dimensions_are_replicated():
  assert spec(("embed", "mlp"), (3, 5)) == (None, None)
  assert spec(("layers", "heads", "head_dim"), (2, 3, 8)) == (None, None, None)
  # A multi-axis rule keeps the longest prefix of its axes that divides.
  assert spec(("batch", "time"), (2, 16)) == ("data", None)
  assert spec(("batch", "time"), (1, 16)) == (None, None)


def test_no_mesh_axis_is_used_twice_in_one_spec():
  # batch takes data and fsdp, so the activation's embed cannot take fsdp.
  assert spec(("batch", "time", "embed"), (8, 16, 16)) == (
      ("data", "fsdp"), None, None)
  assert spec(("mlp", "vocab"), (32, 64)) == ("tensor", None)
  both = (("embed", "fsdp"), ("mlp", "fsdp"), ("mlp", "tensor"))
  # mlp's first rule is taken by embed, so its fallback rule applies.
  assert spec(("embed", "mlp"), (16, 32), rules=both) == ("fsdp", "tensor")


def test_size_one_mesh_axes_are_dropped():
  sizes = dict(data=8, fsdp=1, tensor=1)
  assert spec(("layers", "embed", "mlp"), (2, 16, 32), sizes) == (None,) * 3
  assert spec(("batch", "time"), (8, 16), sizes) == ("data", None)


def test_spec_errors():
  with pytest.raises(ValueError, match="do not match shape"):
    spec(("embed",), (4, 4))
  with pytest.raises(ValueError, match="the mesh has no axis 'model'"):
    spec(("embed",), (8,), rules=(("embed", "model"),))


NAMES = ("batch", "time", "embed", "mlp", "heads", "head_dim", "vocab",
         "layers", None)
MESHES = ((8, 1, 1), (2, 2, 2), (1, 4, 2), (2, 1, 4), (1, 8, 1))


@hypothesis.given(
    sizes=st.sampled_from(MESHES),
    dims=st.lists(st.tuples(st.sampled_from(NAMES), st.integers(1, 64)),
                  min_size=1, max_size=5))
def test_specs_shard_only_evenly_over_distinct_ruled_axes(sizes, dims):
  sizes = dict(zip(logical.MESH_AXES, sizes))
  axes, shape = zip(*dims)
  entries = spec(axes, shape, sizes)
  counts = logical.shard_counts(axes, shape, sizes)
  assert len(entries) == len(counts) == len(shape)
  ruled = {}
  for name, mesh_axes in logical.RULES:
    ruled.setdefault(name, set()).update(mesh_axes or ())
  used = []
  for name, dim, entry, n in zip(axes, shape, entries, counts):
    names = (() if entry is None else
             (entry,) if isinstance(entry, str) else entry)
    used += names
    assert set(names) <= ruled.get(name, set())
    assert n == math.prod(sizes[a] for a in names) and dim % n == 0
    assert all(sizes[a] > 1 for a in names)
  assert len(used) == len(set(used))


def test_batch_axes_are_the_first_batch_rule_with_a_real_axis():
  assert logical.batch_axes(MESH) == ("data", "fsdp")
  assert logical.batch_axes(dict(data=1, fsdp=4, tensor=2)) == ("fsdp",)
  assert logical.batch_axes(dict(data=1, fsdp=1, tensor=8)) == ()
  rules = logical.rules_from_config([("batch", None)])
  assert logical.batch_axes(MESH, rules) == ()


def test_rules_from_config_overrides_by_name():
  rules = logical.rules_from_config(
      [("embed", None), ("mlp", ["tensor", "fsdp"])])
  assert ("embed", None) in rules and ("embed", ("fsdp",)) not in rules
  assert ("mlp", ("tensor", "fsdp")) in rules
  assert ("vocab", ("tensor",)) in rules  # untouched names keep defaults
  assert logical.rules_from_config({"heads": "fsdp"})[0] == ("heads", ("fsdp",))
  assert logical.rules_from_config(None) == logical.RULES
  assert spec(("embed", "mlp"), (16, 32), rules=rules) == (
      None, ("tensor", "fsdp"))


@pytest.mark.parametrize("rules, message", [
    ([("embed", "model")], r"mesh.rules\[0\]: mesh axis 'model' of 'embed'"),
    ([("embed", "fsdp"), ("mlp",)], r"mesh.rules\[1\]: \('mlp',\) is not a"),
    ([("mlp", 3)], r"mesh.rules\[0\]: 3 is not None, a mesh axis name"),
    ("embed", r"mesh.rules: 'embed' is not a list"),
])
def test_rules_from_config_errors_name_the_entry(rules, message):
  with pytest.raises(ValueError, match=message):
    logical.rules_from_config(rules)


def test_mesh_sizes_fill_missing_axes_and_name_bad_ones():
  assert logical.mesh_sizes({"tensor": 4}) == dict(data=1, fsdp=1, tensor=4)
  with pytest.raises(ValueError, match=r"mesh: unknown axes \['pipeline'\]"):
    logical.mesh_sizes(dict(pipeline=2))
  with pytest.raises(ValueError, match=r"mesh\['fsdp'\]: 0 is not an integer"):
    logical.mesh_sizes(dict(fsdp=0))
  with pytest.raises(ValueError, match="mesh: 8 is not a dict"):
    logical.mesh_sizes(8)
