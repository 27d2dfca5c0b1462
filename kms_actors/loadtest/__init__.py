"""``kms-actors loadtest``: load-test a KMS API endpoint, or the embedded service.

How it is built: ``_options`` checks the command line into ``Options`` (every mistake is one
line); ``_target`` sends requests (aiohttp + SigV4 + JSON 1.1, or the embedded client);
``_setup`` checks the endpoint, creates keys and ciphertexts and schedules them for deletion
afterwards; ``_load`` runs the closed or open loop of one worker; ``_workers`` runs it in this
process or in spawned processes; ``_histogram`` is the mergeable log-linear histogram;
``_model`` merges results; ``_report``, ``_table`` and ``_html`` present them.
"""

from kms_actors.loadtest._cli import add_parser, execute, run
from kms_actors.loadtest._histogram import RELATIVE_ERROR, Histogram
from kms_actors.loadtest._options import Options, UsageError, options_from_args
from kms_actors.loadtest._report import Report, load_report

__all__ = [
    "RELATIVE_ERROR",
    "Histogram",
    "Options",
    "Report",
    "UsageError",
    "add_parser",
    "execute",
    "load_report",
    "options_from_args",
    "run",
]
