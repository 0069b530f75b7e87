"""The interop agent's command line: a token or text that begins with "-" is a value, not an option."""
import contextlib
import io
import unittest

from switchboard_client.agent import main


class AgentArgs(unittest.TestCase):
    def test_values_that_begin_with_a_dash(self) -> None:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                main(["--port", "1", "--timeout", "0.5", "--name", "x", "--token", "-abc", "--text", "-hi", "recv"])
            except SystemExit as e:  # argparse's refusal
                self.fail(f"argparse refused the arguments: {err.getvalue()!r} ({e.code})")
        self.assertNotIn("expected one argument", err.getvalue())


if __name__ == "__main__":
    unittest.main()
