"""`python -m suit_controller` is `suitctl`."""

from suit_controller.cli import main

main()
