"""Dependency graph of KPIs: evaluation order and every cycle, printed as ``a -> b -> a``."""

from __future__ import annotations

from typing import Iterable, Mapping


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative so that a deep chain of KPIs cannot exhaust the stack."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterable[str]]] = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle per strongly connected component: the shortest closed path through its smallest id."""
    from collections import deque

    cycles = []
    for component in strongly_connected(graph):
        members = set(component)
        start = min(component)
        if len(component) == 1 and start not in set(graph.get(start, ())):
            continue
        parents: dict[str, str] = {}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            successors = sorted(c for c in graph.get(node, ()) if c in members)
            if start in successors:
                path = [start]
                while node != start:
                    path.append(node)
                    node = parents[node]
                cycles.append([start, *reversed(path[1:]), start])
                break
            for child in successors:
                if child not in parents:
                    parents[child] = node
                    queue.append(child)
    return sorted(cycles)


def topological_order(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """Dependencies first; ties broken by id so the order is stable. Assumes no cycle."""
    from graphlib import TopologicalSorter

    sorter = TopologicalSorter({n: [d for d in deps if d in graph] for n, deps in graph.items()})
    sorter.prepare()
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(ready)
        sorter.done(*ready)
    return order
