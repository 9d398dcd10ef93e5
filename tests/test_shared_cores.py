"""Which workers of a group run CPU engines on shared cores (`actors.group.shared_cpu_cores`): pure."""


def _info(i, node, cores, cpu=True):
    return {"worker_index": i, "node_id": node, "cores": cores, "cpu_engine": cpu}


def test_cpu_engines_on_one_node_with_overlapping_cores_are_named():
    from actors.group import shared_cpu_cores

    infos = [_info(0, "a", [0, 1]), _info(1, "a", [1, 2]), _info(2, "b", [0, 1]), _info(3, "a", [3])]
    assert shared_cpu_cores(infos) == [(0, 1, [1])]
    # bound one core each, on other nodes, or not CPU engines (GPU, remote PRM, rule rewards): nothing to say
    assert shared_cpu_cores([_info(0, "a", [0]), _info(1, "a", [1])]) == []
    assert shared_cpu_cores([_info(0, "a", [0, 1]), _info(1, "b", [0, 1])]) == []
    assert shared_cpu_cores([_info(0, "a", [0, 1], cpu=False), _info(1, "a", [0, 1], cpu=False)]) == []
    assert shared_cpu_cores([{"worker_index": 0, "node_id": "a"}, {"worker_index": 1, "node_id": "a"}]) == []
