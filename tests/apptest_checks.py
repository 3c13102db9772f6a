"""Checks shared by the AppTest files."""
from streamlit.testing.v1 import AppTest


def assert_clean(at: AppTest) -> None:
    """No exception and no error element on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
