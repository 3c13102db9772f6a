"""TF_CONFIG is read and checked before a worker joins a cluster: a bad value is named in one
`error:` line (exit 2), and the chief is found by TensorFlow's rule. Nothing here starts a cluster."""
import json

import pytest

from multimodal.cli import main
from multimodal.train.devices import read_tf_config
from multimodal.train.multiworker import ClusterError, reason


def config(cluster, task) -> str:
    return json.dumps({"cluster": cluster, "task": task})


TWO = {"worker": ["host1:2222", "host2:2222"]}


@pytest.mark.parametrize("text, named", [
    (None, "needs the TF_CONFIG environment variable"),
    ("", "needs the TF_CONFIG environment variable"),
    ("{cluster: 1}", "not valid JSON"),
    ('["worker"]', "must be a JSON object"),
    (json.dumps({"task": {"type": "worker", "index": 0}}), 'no "cluster"'),
    (config({"ps": ["h:1"], "worker": ["h:2"]}, {"type": "worker", "index": 0}), 'job "ps" is not supported'),
    (config({"worker": "host1:2222"}, {"type": "worker", "index": 0}), "'host1:2222'"),
    (config({"worker": ["host1"]}, {"type": "worker", "index": 0}), "address 'host1'"),
    (config({"worker": ["host1:99999"]}, {"type": "worker", "index": 0}), "address 'host1:99999'"),
    (config({"worker": ["h:1", "h:1"]}, {"type": "worker", "index": 0}), "'h:1' twice"),
    (config({"chief": ["a:1", "b:1"], "worker": ["c:1"]}, {"type": "chief", "index": 0}), "at most one chief"),
    (json.dumps({"cluster": TWO}), 'no "task"'),
    (config(TWO, {"type": "chief", "index": 0}), "task type 'chief'"),
    (config(TWO, {"type": "worker", "index": 2}), "task index 2 is out of range"),
    (config(TWO, {"type": "worker", "index": "1"}), "task index '1'"),
    (config(TWO, {"type": "worker", "index": True}), "task index True"),
])
def test_a_bad_tf_config_is_named(text, named):
    with pytest.raises(ClusterError) as caught:
        read_tf_config(text)
    assert named in str(caught.value)


def test_the_chief_is_the_chief_task_else_worker_zero():
    workers = [read_tf_config(config(TWO, {"type": "worker", "index": i})) for i in (0, 1)]
    assert [w.is_chief for w in workers] == [True, False]
    assert workers[1].workers == 2 and workers[1].address == "host2:2222"
    assert workers[1].name == "worker 1 (host2:2222)"
    with_chief = {"chief": ["boss:1"], "worker": ["host1:2222", "host2:2222"]}
    chief = read_tf_config(config(with_chief, {"type": "chief", "index": 0}))
    first = read_tf_config(config(with_chief, {"type": "worker", "index": 0}))
    assert chief.is_chief and not first.is_chief and chief.workers == 3


@pytest.mark.parametrize("args, env, expected", [
    (["--multi-worker"], None, "needs the TF_CONFIG environment variable"),
    (["--multi-worker"], "{oops", "not valid JSON"),
    (["--multi-worker", "--devices", "2"], None, "leave out --devices"),
    (["--multi-worker", "--cv", "3"], None, "--cv and --baselines are not available"),
    (["--multi-worker", "--worker-timeout", "0"], None, "--worker-timeout must be above 0"),
    (["--worker-timeout", "5"], None, "--multi-worker training only"),
])
def test_the_command_line_refuses_a_bad_cluster_set_up_with_one_error_line(args, env, expected, tiny_samples,
                                                                        monkeypatch, capsys, tmp_path):
    if env is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", env)
    assert main(["train", str(tiny_samples["skin_lesions"]), "--out", str(tmp_path / "runs"), *args]) == 2
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [err.strip()]
    assert expected in err
    assert not (tmp_path / "runs").exists()


def test_the_reason_of_a_lost_worker_is_the_line_naming_it():
    heartbeat = ("Graph execution error:\n\nDetected at node CollectiveReduceV2 defined at ...\n"
                 "Collective ops is aborted by: Error reported from /job:worker/task:1: The following tasks are "
                 "unhealthy (stopped sending heartbeats):\n/job:worker/replica:0/task:1\nThe tasks have crashed.")
    assert reason(Exception(heartbeat)) == ("Error reported from /job:worker/task:1: The following tasks are "
                                            "unhealthy (stopped sending heartbeats): /job:worker/replica:0/task:1")
    refused = "Collective ops is aborted by: failed to connect to all addresses; Connection refused\nmore"
    assert reason(Exception(refused)) == "failed to connect to all addresses; Connection refused"
