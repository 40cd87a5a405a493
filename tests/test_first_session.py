"""S5: the first session is capped at 50 mA, at check-in, in the client's settings and at the suit.

A mutation that doubled the cap from 50 to 100 mA survived every test before
these (see docs/mutation.md): a first-session client would have had twice the
current on their first day. These check the number a first-session client is
capped at, through check-in and through the real engine against simulated suits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trio
import trio.testing

from channels import DEFAULT_LAYOUT, channel_cap_mA
from suit_controller.cli.roster import CheckIn, check_in
from suit_controller.clients import ClientSpec
from suit_controller.studio.screening import CONTRAINDICATIONS, DEFAULT_POLICY, SitePolicy
from suit_controller.studio.store import Store

from .simclass_helpers import QUADS, make_class

KEYS = [c.key for c in CONTRAINDICATIONS]


def new_client_store(path: Path, *names: str) -> Store:
    store = Store(path)
    for n in names:
        store.add_client(n)
        store.add_screening(n, "Tom", set(), set(), KEYS)
    return store


def test_the_site_policy_caps_a_first_session_at_50_mA() -> None:
    assert DEFAULT_POLICY.first_session_cap_mA == 50.0
    assert SitePolicy().first_session_cap_mA == 50.0


def test_check_in_caps_a_first_session_client_at_50_mA_on_every_channel(tmp_path: Path) -> None:
    store = new_client_store(tmp_path / "s.db", "Ana")
    specs, roster, guidance = check_in(
        store, [CheckIn("Ana", "S1")], ["Tom"], DEFAULT_LAYOUT, default_intensity_mA=80.0
    )
    [ana] = specs
    assert ana.first_session and roster[0].first_session
    assert ana.cap_mA == 50.0
    caps = ana.caps(DEFAULT_LAYOUT)
    assert caps.tolist() == [min(50.0, ch.max_mA) for ch in DEFAULT_LAYOUT.channels]
    assert caps.max() == 50.0
    assert guidance == [
        "Ana: first session: every channel capped at 50 mA; keep it light (Borg CR10 5-6),"
        " no exercise to exhaustion"
    ]


def test_a_site_may_set_a_lower_first_session_cap(tmp_path: Path) -> None:
    store = new_client_store(tmp_path / "s.db", "Ana")
    specs, _, guidance = check_in(
        store,
        [CheckIn("Ana", "S1")],
        ["Tom"],
        DEFAULT_LAYOUT,
        default_intensity_mA=80.0,
        policy=SitePolicy(first_session_cap_mA=35.0),
    )
    assert specs[0].cap_mA == 35.0 and specs[0].caps(DEFAULT_LAYOUT).max() == 35.0
    assert "capped at 35 mA" in guidance[0]


def test_a_first_session_spec_is_capped_at_50_mA_even_with_a_higher_own_cap() -> None:
    spec = ClientSpec("Ana", intensity_mA=90.0, cap_mA=110.0, first_session=True)
    assert spec.caps(DEFAULT_LAYOUT).max() == 50.0
    assert ClientSpec("Ben", cap_mA=110.0).caps(DEFAULT_LAYOUT).max() == 110.0


async def test_a_first_session_client_never_gets_more_than_50_mA_at_the_suit(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    store = new_client_store(tmp_path / "s.db", "Ana")
    specs, _, _ = check_in(
        store, [CheckIn("Ana", "SIM-01")], ["Tom"], DEFAULT_LAYOUT, default_intensity_mA=80.0
    )
    regular = ClientSpec("Ben", intensity_mA=80.0)
    sc, hist = make_class(2, clients=[specs[0], regular])
    assert await sc.run() == "finished"
    ana = np.max([out for _, out, _ in hist.changes[sc.suits[0].address]], axis=0)
    ben = np.max([out for _, out, _ in hist.changes[sc.suits[1].address]], axis=0)
    # the program (350 µs, 85 Hz) allows far more on the quads: the first-session cap binds
    q = DEFAULT_LAYOUT.channels[QUADS]
    assert (
        channel_cap_mA(
            channel_max_mA=q.max_mA, area_cm2=q.area_cm2, pulse_width_us=350, frequency_hz=85
        )
        > 80.0
    )
    assert ana[QUADS] == 50.0
    assert ana.max() == 50.0
    assert ben[QUADS] == 80.0  # the regular client next to them reaches their target
    assert sc.session.board.target_mA[0].max() == 50.0
