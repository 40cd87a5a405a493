"""The suits page API (issue 18): enroll, list, rotate, forget — managers only, with CSRF."""

from __future__ import annotations

from pathlib import Path

import trio

from suit_controller.protocol.enrollment import encode_enroll, new_studio_id, new_suit_key
from suit_controller.studio.suit_keys import suit_key

from .studio_helpers import eventually, logged_in, start_site


async def test_a_manager_enrolls_rotates_and_forgets_a_suit(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            site, rack = await start_site(nursery, tmp_path)
            store = site.studio.store
            fw = rack.suit("SIM-01").firmware
            code = rack.suit("SIM-01").setup_code
            mia = await logged_in(site, "Mia")
            assert (await mia.get("/api/v1/suit-keys")).json() == {"suits": []}
            # a setup code that is not six digits, and one that is not this suit's
            r = await mia.post(
                "/api/v1/suit-keys", json={"address": "SIM-01", "setup_code": "12a456"}
            )
            assert r.status_code == 422  # the OpenAPI document allows six digits only
            wrong = f"{(int(code) + 1) % 1_000_000:06d}"
            r = await mia.post("/api/v1/suit-keys", json={"address": "SIM-01", "setup_code": wrong})
            assert r.status_code == 409 and "setup code" in r.json()["detail"]
            assert not fw.auth.enrolled and suit_key(store, "SIM-01") is None
            # enrolled: the suit and the records hold the same key
            r = await mia.post("/api/v1/suit-keys", json={"address": "sim-01", "setup_code": code})
            assert r.status_code == 201 and r.json() == {"address": "SIM-01", "key_id": 1}
            assert fw.auth.key == suit_key(store, "SIM-01") is not None
            listed = (await mia.get("/api/v1/suit-keys")).json()["suits"]
            assert [(s["address"], s["key_id"]) for s in listed] == [("SIM-01", 1)]
            assert "key" not in listed[0]  # never the key itself
            r = await mia.post("/api/v1/suit-keys", json={"address": "SIM-01", "setup_code": code})
            assert r.status_code == 409 and "already enrolled" in r.json()["detail"]
            # rotated: a new key on both sides
            old = fw.auth.key
            r = await mia.post("/api/v1/suit-keys/SIM-01/rotate")
            assert r.status_code == 200 and r.json()["key_id"] == 2
            assert fw.auth.key == suit_key(store, "SIM-01") != old
            # forgotten: the suit is open again, the records hold nothing
            r = await mia.post("/api/v1/suit-keys/SIM-01/forget", json={})
            assert r.status_code == 200 and "any studio" in r.json()["note"]
            assert not fw.auth.enrolled and suit_key(store, "SIM-01") is None
            r = await mia.post("/api/v1/suit-keys/SIM-01/forget", json={})
            assert r.status_code == 404
            r = await mia.post("/api/v1/suit-keys/SIM-01/rotate")
            assert r.status_code == 404
            audit = (await mia.get("/api/v1/audit")).json()["entries"]
            done = [e["action"] for e in audit if e["subject"] == "SIM-01"]
            assert done == ["suit_forgotten", "suit_key_rotated", "suit_enrolled"]
            nursery.cancel_scope.cancel()


async def test_a_suit_enrolled_elsewhere_is_refused_with_the_way_out(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            site, rack = await start_site(nursery, tmp_path)
            fw = rack.suit("SIM-02").firmware
            theirs = new_suit_key()
            fw.auth.handle(encode_enroll(new_studio_id(), theirs))
            mia = await logged_in(site, "Mia")
            code = rack.suit("SIM-02").setup_code
            r = await mia.post("/api/v1/suit-keys", json={"address": "SIM-02", "setup_code": code})
            assert r.status_code == 409
            assert "enrolled in another studio" in r.json()["detail"]
            assert "factory reset" in r.json()["detail"]
            assert fw.auth.key == theirs and suit_key(site.studio.store, "SIM-02") is None
            nursery.cancel_scope.cancel()


async def test_only_a_manager_with_the_csrf_header_may_change_suits(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            site, rack = await start_site(nursery, tmp_path)
            code = rack.suit("SIM-01").setup_code
            body = {"address": "SIM-01", "setup_code": code}
            tess = await logged_in(site, "Tess")
            assert (await tess.get("/api/v1/suit-keys")).status_code == 403
            assert (await tess.post("/api/v1/suit-keys", json=body)).status_code == 403
            no_csrf = await logged_in(site, "Mia", csrf=False)
            assert (await no_csrf.post("/api/v1/suit-keys", json=body)).status_code == 403
            assert not rack.suit("SIM-01").firmware.auth.enrolled
            mia = await logged_in(site, "Mia")
            assert (await mia.post("/api/v1/suit-keys", json=body)).status_code == 201
            r = await mia.post("/api/v1/suit-keys/SIM-01/forget", json={"records_only": True})
            assert r.status_code == 200 and "factory reset" in r.json()["note"]
            assert rack.suit("SIM-01").firmware.auth.enrolled  # the suit keeps its key
            extra = {**body, "key": "00" * 32}
            assert (await mia.post("/api/v1/suit-keys", json=extra)).status_code == 422
            nursery.cancel_scope.cancel()


async def test_a_suit_in_a_class_that_has_not_ended_keeps_its_key(tmp_path: Path) -> None:
    """M4: rotate or forget mid-class would drop the client silently; refused with the way out."""
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            site, rack = await start_site(nursery, tmp_path)
            store = site.studio.store
            fw = rack.suit("SIM-01").firmware
            mia = await logged_in(site, "Mia")
            code = rack.suit("SIM-01").setup_code
            r = await mia.post("/api/v1/suit-keys", json={"address": "SIM-01", "setup_code": code})
            assert r.status_code == 201
            key = fw.auth.key
            ana = (await mia.post("/api/v1/clients", json={"name": "Ana"})).json()["id"]
            r = await mia.post(f"/api/v1/clients/{ana}/screenings", json={})
            assert r.status_code == 201, r.text
            body = {
                "room": "Room 1",
                "workout": "classic_strength",
                "trainers": ["Mia"],
                "clients": [{"client": ana, "suit": "SIM-01", "ate_recently": True}],
            }
            r = await mia.post("/api/v1/classes", json=body)
            assert r.status_code == 201, r.text
            cid = r.json()["id"]

            async def refused() -> None:
                for path, body in (
                    ("rotate", None),
                    ("forget", {}),
                    ("forget", {"records_only": True}),
                ):
                    r = await mia.post(f"/api/v1/suit-keys/sim-01/{path}", json=body)
                    assert r.status_code == 409, r.text
                    assert r.json()["detail"] == (
                        "suit SIM-01 is in Room 1's class now; end the class first"
                    )
                assert fw.auth.key == key == suit_key(store, "SIM-01")  # nothing changed

            await refused()  # set up, not started
            r = await mia.post(f"/api/v1/classes/{cid}/start")
            assert r.status_code == 200, r.text
            await refused()  # running
            r = await mia.post(f"/api/v1/classes/{cid}/end", json={})
            assert r.status_code == 200, r.text
            klass = site.studio.classes[cid]
            await klass.done.wait()
            r = await mia.post("/api/v1/suit-keys/SIM-01/rotate")
            assert r.status_code == 200 and fw.auth.key == suit_key(store, "SIM-01") != key
            audit = (await mia.get("/api/v1/audit")).json()["entries"]
            assert [e["action"] for e in audit if e["subject"] == "SIM-01"] == [
                "suit_key_rotated",
                "suit_enrolled",
            ]
            nursery.cancel_scope.cancel()


async def test_a_key_changed_behind_a_running_class_is_told_to_the_trainer(
    tmp_path: Path,
) -> None:
    """M4: a suit that refuses every frame after the re-arm is noticed and the trainer told.

    The API refuses a new key mid-class, so the key changes here behind the studio's back
    (as a factory reset and re-enrollment elsewhere would).
    """
    from suit_controller.protocol.enrollment import encode_rotate

    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            site, rack = await start_site(nursery, tmp_path)
            store = site.studio.store
            fw = rack.suit("SIM-01").firmware
            mia = await logged_in(site, "Mia")
            code = rack.suit("SIM-01").setup_code
            r = await mia.post("/api/v1/suit-keys", json={"address": "SIM-01", "setup_code": code})
            assert r.status_code == 201
            ana = (await mia.post("/api/v1/clients", json={"name": "Ana"})).json()["id"]
            await mia.post(f"/api/v1/clients/{ana}/screenings", json={})
            body = {
                "room": "Room 1",
                "workout": "classic_strength",
                "trainers": ["Mia"],
                "clients": [{"client": ana, "suit": "SIM-01", "ate_recently": True}],
            }
            cid = (await mia.post("/api/v1/classes", json=body)).json()["id"]
            assert (await mia.post(f"/api/v1/classes/{cid}/start")).status_code == 200
            await mia.post(f"/api/v1/classes/{cid}/commands", json={"do": "skip"})
            await eventually(lambda: bool(fw.applied_mA.any()))  # the suit block: stimulated
            held = suit_key(store, "SIM-01")
            assert held is not None
            assert fw.auth.handle(encode_rotate(held, new_suit_key(held))) is None

            def kinds() -> list[str]:
                return [str(e["kind"]) for e in store.class_events(cid)]

            await eventually(lambda: "suit_key_mismatch" in kinds())
            (told,) = [e for e in store.class_events(cid) if e["kind"] == "suit_key_mismatch"]
            assert (
                "SIM-01" in told["message"]
                and "does not accept this studio's key" in (told["message"])
            )
            assert not fw.applied_mA.any()  # fail-safe at the suit throughout
            k = (await mia.get(f"/api/v1/classes/{cid}")).json()
            assert k["state"] == "running"  # the other clients' class goes on
            nursery.cancel_scope.cancel()
