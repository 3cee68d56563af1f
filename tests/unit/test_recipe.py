from dataclasses import replace

import pytest

from helpers.models.recipe import Recipe, recipe_hash


def test_hash_changes_with_the_recipe_and_only_then():
    assert recipe_hash(Recipe()) == recipe_hash(Recipe())
    assert recipe_hash(Recipe()) != recipe_hash(replace(Recipe(), seed=7))


@pytest.mark.parametrize("field", ["hidden_size", "intermediate_size"])
def test_sizes_must_suit_4_bit_groups(field):
    with pytest.raises(ValueError, match="multiple of 128"):
        replace(Recipe(), **{field: 200})
