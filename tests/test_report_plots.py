"""The report's plots on their own (pure matplotlib, no engines)."""

import warnings


def test_a_panel_no_run_logged_leaves_the_legend_to_the_next_panel(tmp_path):
    from spark_rl.pipelines.report import line_plot

    runs = {"gate": [{"step": s, "reward": 0.1 * s} for s in range(4)],
            "rlvr": [{"step": s, "reward": 0.2 * s} for s in range(4)]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = line_plot(runs, [("prm/agreement", "agreement"), ("reward", "reward")], "t", tmp_path / "p.png")
    assert path.stat().st_size > 0
    assert not [w for w in caught if "legend" in str(w.message)], [str(w.message) for w in caught]
