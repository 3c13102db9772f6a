"""TensorFlow's C++ start-up lines stay out of stderr (core/quiet.py), whoever imports it first."""
import subprocess
import sys

import pytest

CHATTER = ("absl::InitializeLog", "oneDNN custom operations")


def stderr_of(code: str) -> str:
    env = {"PATH": "/usr/bin:/bin"}   # no TF_CPP_MIN_LOG_LEVEL from the test session
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stderr


def test_tensorflow_prints_its_start_up_lines_without_it():
    """The premise: without quiet_tensorflow() these lines appear (else the next test proves nothing)."""
    assert any(line in stderr_of("import tensorflow") for line in CHATTER)


@pytest.mark.parametrize("first_import", ["import keras", "import tensorflow as tf; tf.constant(1).numpy()"])
def test_quiet_tensorflow_silences_the_first_import_whoever_makes_it(first_import):
    code = ("import sys; from multimodal.core.quiet import quiet_tensorflow; quiet_tensorflow(); "
            "assert 'tensorflow' not in sys.modules, 'quiet_tensorflow must not import it'; "
            f"{first_import}; import tensorflow; print('ok', file=sys.stderr)")
    assert stderr_of(code).strip() == "ok"     # stderr works again after the import, and nothing else came


RETRACE = ("import tensorflow as tf\n"
           "for i in range(8):\n"
           "    tf.function(lambda x: x * 2)(tf.constant([1.0] * (i + 1)))\n")


@pytest.mark.parametrize("quiet", [False, True])
def test_retracing_warnings_stay_out_of_the_log_once_quiet(quiet):
    """A comparison builds a model per fold, and TensorFlow warns about "retracing" each time: a
    developer's hint that flooded the app's log. Without quiet_tensorflow() it appears (the premise)."""
    setup = "from multimodal.core.quiet import quiet_tensorflow; quiet_tensorflow()\n" if quiet else ""
    assert ("retracing" in stderr_of(setup + RETRACE)) is not quiet
