import pytest

from kpiforge._graph import find_cycles, topological_order


@pytest.mark.parametrize("graph, cycles", [
    ({"a": ["b"], "b": ["a"]}, [["a", "b", "a"]]),
    ({"a": ["a"]}, [["a", "a"]]),
    ({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}, [["a", "b", "c", "a"]]),
    ({"x": ["y"], "y": ["z"], "z": ["x", "y"]}, [["x", "y", "z", "x"]]),
    ({"a": ["b"], "b": ["a"], "c": ["d"], "d": ["c"]}, [["a", "b", "a"], ["c", "d", "c"]]),
    ({"ltv_cac_ratio": ["ltv", "cpa"], "ltv": ["churn_rate"], "churn_rate": [], "cpa": []}, []),
])
def test_find_cycles(graph, cycles):
    assert find_cycles(graph) == cycles


def test_topological_order_puts_dependencies_first():
    graph = {"ltv_cac_ratio": ["ltv", "cpa"], "ltv": ["churn_rate"], "churn_rate": [], "cpa": []}
    order = topological_order(graph)
    assert order.index("churn_rate") < order.index("ltv") < order.index("ltv_cac_ratio")
    assert order.index("cpa") < order.index("ltv_cac_ratio")


def test_deep_chain_does_not_exhaust_the_stack():
    depth = 20_000
    graph = {f"k{i}": [f"k{i + 1}"] for i in range(depth)} | {f"k{depth}": ["k0"]}
    (cycle,) = find_cycles(graph)
    assert len(cycle) == depth + 2 and cycle[0] == cycle[-1]
    chain = {f"k{i}": [f"k{i + 1}"] for i in range(depth)} | {f"k{depth}": []}
    assert topological_order(chain)[0] == f"k{depth}"
