"""The suit makers' conformance kit: checks of docs/protocol.md over a suit under test."""

from suit_controller.conformance.checks import CHECKS, Check
from suit_controller.conformance.probe import CheckFailed, CheckSkipped, Probe, Report
from suit_controller.conformance.report import html_report, junit_xml, print_table, write_reports
from suit_controller.conformance.run import CheckResult, ConformanceRun, run_conformance
from suit_controller.conformance.target import InProcessTarget, LinkTarget, SuitUnderTest

__all__ = [
    "CHECKS",
    "Check",
    "CheckFailed",
    "CheckResult",
    "CheckSkipped",
    "ConformanceRun",
    "InProcessTarget",
    "LinkTarget",
    "Probe",
    "Report",
    "SuitUnderTest",
    "html_report",
    "junit_xml",
    "print_table",
    "run_conformance",
    "write_reports",
]
