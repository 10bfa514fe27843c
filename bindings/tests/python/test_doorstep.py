"""The phone API through the generated Python bindings.

Offline work on a seeded replica, errors and panics as ApiError, the enroll -> offline -> sync
round trip against a real `doorstep-server demo` checked through the admin API, a transport
written in Python, and two phones editing one household offline until they converge.

Run by scripts/bindings-test.sh:
    PYTHONPATH=build/bindings python3 bindings/tests/python/test_doorstep.py <doorstep-server>
Plain unittest; the last line printed is `N passed, N failed`.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

import doorstep_ffi as d

SERVER_BINARY = None
CAMPAIGN = "election-2025"
ADMIN_PASSWORD = "python-binding-passphrase"
CODE_LINE = re.compile(r"^\s*building\s+(\S+)\s+(\S+)\s+(\S+)\s*$")


def yes(*candidates):
    return d.Answer(choice=None, candidates={c: d.Choice.YES for c in candidates}, options=[])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DemoServer:
    """One `doorstep-server demo` process; stop() it and start() it again on the same db."""

    def __init__(self, db):
        self.db = db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.codes = {}
        self.output = []
        self.process = None

    def start(self):
        self.codes = {}
        env = dict(os.environ, DOORSTEP_ADMIN_PASSWORD=ADMIN_PASSWORD, RUST_LOG="warn")
        self.process = subprocess.Popen(
            [SERVER_BINARY, "demo", "--listen", f"127.0.0.1:{self.port}", "--db", self.db],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
        # Drain the output on a thread of its own so the server never blocks on a full pipe.
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()
        deadline = time.monotonic() + 60
        while not self._healthy():
            if self.process.poll() is not None:
                raise RuntimeError("doorstep-server exited early:\n" + "\n".join(self.output))
            if time.monotonic() > deadline:
                raise RuntimeError("doorstep-server did not come up:\n" + "\n".join(self.output))
            time.sleep(0.1)
        # Codes are printed before the server listens, so they are all in by now.
        if not self.codes:
            raise RuntimeError("no enrollment codes printed:\n" + "\n".join(self.output))

    def _read(self, process):
        for line in process.stdout:
            self.output.append(line.rstrip("\n"))
            m = CODE_LINE.match(line)
            if m:
                self.codes[m.group(1)] = m.group(3)

    def _healthy(self):
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self):
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def request(self, method, path, body=None, token=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"null")

    def text(self, path, token):
        req = urllib.request.Request(self.url + path)
        req.add_header("Authorization", "Bearer " + token)
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read().decode("utf-8")

    def admin_token(self):
        return self.request("POST", "/api/v1/auth/login",
                            {"login": "admin", "password": ADMIN_PASSWORD})["token"]


class UrllibTransport(d.SyncTransport):
    """The app's own HTTP stack (here urllib) behind doorstep's SyncTransport."""

    def __init__(self, base_url):
        self.base_url = base_url.rstrip("/")
        self.requests = 0

    def post_sync(self, body, token):
        return self._post("/api/v1/sync", "application/cbor", body, token)

    def post_enroll(self, body):
        return self._post("/api/v1/enroll", "application/json", body, None)

    def _post(self, path, content_type, body, token):
        self.requests += 1
        req = urllib.request.Request(self.base_url + path, data=bytes(body), method="POST")
        req.add_header("Content-Type", content_type)
        if token is not None:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.read()
        except urllib.error.HTTPError as e:
            raise d.TransportError.Http(e.code, e.read())
        except OSError as e:
            raise d.TransportError.Network(str(e))


class Offline(unittest.TestCase):
    """A replica seeded without a server."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="doorstep-py-")
        path = os.path.join(cls.dir, "seeded.db")
        cls.seed = d.seed_demo_replica(path)
        cls.phone = d.DoorstepReplica.open(path)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_lists_buildings_units_campaigns_and_questions(self):
        self.assertEqual([b.id for b in self.phone.buildings()], ["1", "2", "3"])
        units = self.phone.units("1", self.seed.resolution)
        self.assertEqual(len(units), 28)
        self.assertTrue(all(u.visits == 0 and not u.ballot_recorded for u in units))
        campaigns = {c.id: c for c in self.phone.campaigns()}
        survey = campaigns[self.seed.survey].questions[0].kind
        self.assertIsInstance(survey, d.QuestionKind.SURVEY)
        self.assertEqual([o.id for o in survey.options], ["a", "b", "c"])

    def test_visit_delivery_ballot_and_correction(self):
        unit = self.phone.units("2", self.seed.resolution)[0].unit.code
        self.phone.record_visit(self.seed.resolution, unit, d.DoorOutcome.NOT_HOME, "")
        self.phone.record_visit(self.seed.resolution, unit, d.DoorOutcome.DELIVERED, "")
        self.phone.record_delivery(self.seed.resolution, unit)
        first = self.phone.record_ballot(
            self.seed.resolution, unit, {"q1": d.Answer(choice=d.Choice.YES)}, None)
        self.phone.record_ballot(
            self.seed.resolution, unit, {"q1": d.Answer(choice=d.Choice.NO)}, first)
        view = next(u for u in self.phone.units("2", self.seed.resolution) if u.unit.code == unit)
        self.assertEqual((view.visits, view.last_outcome, view.ballot_recorded),
                         (2, d.DoorOutcome.DELIVERED, True))
        self.assertEqual(self.phone.attention().ballot_conflicts, [])

    def test_survey_answer_and_the_rules_reason(self):
        unit = self.phone.units("3", self.seed.survey)[0].unit.code
        self.phone.record_survey_answer(self.seed.survey, unit, {"s1": ["a", "b"]}, None)
        with self.assertRaises(d.ApiError.NotAllowed) as refused:
            self.phone.record_survey_answer(self.seed.survey, unit, {"s1": ["a", "b", "c"]}, None)
        self.assertEqual(refused.exception.code, "invalid_answer")

    def test_household_edit_and_work_order_lifecycle(self):
        unit = self.phone.units("1", None)[1].unit.code
        self.phone.edit_household(unit, d.HouseholdEdit(contact_name="王芳", occupancy=d.Occupancy.RENTED))
        household = next(u for u in self.phone.units("1", None) if u.unit.code == unit).household
        self.assertEqual((household.contact_name, household.occupancy), ("王芳", d.Occupancy.RENTED))
        order = self.phone.create_order(unit, "更换门禁卡", "")
        for to in (d.OrderStatus.UNDER_REVIEW, d.OrderStatus.PUBLISHED, d.OrderStatus.CLAIMED):
            self.phone.move_order("1", order, to, "", None)
        stored = next(o for o in self.phone.orders("1") if o.id == order)
        self.assertEqual((stored.status, stored.assignee), (d.OrderStatus.CLAIMED, self.seed.account))
        with self.assertRaises(d.ApiError.NotAllowed) as refused:
            self.phone.move_order("1", order, d.OrderStatus.CONFIRMED, "", None)
        self.assertEqual(refused.exception.code, "order_transition")

    def test_bad_input_is_invalid_input_and_changes_nothing(self):
        before = self.phone.pending_count()
        with self.assertRaises(d.ApiError.InvalidInput):
            self.phone.record_visit(self.seed.resolution, "nonsense", d.DoorOutcome.OTHER, "")
        with self.assertRaises(d.ApiError.InvalidInput):
            self.phone.reset_document("not/a/document/id/at/all")
        self.assertEqual(self.phone.pending_count(), before)

    def test_a_panic_arrives_as_a_storage_error(self):
        with self.assertRaises(d.ApiError.Storage) as caught:
            d.testing_panic("deliberate panic from python")
        self.assertIn("deliberate panic from python", caught.exception.reason)
        self.assertEqual(len(self.phone.buildings()), 3)

    def test_not_enrolled_sync_is_invalid_input(self):
        with self.assertRaises(d.ApiError.InvalidInput) as refused:
            self.phone.sync()
        self.assertEqual(refused.exception.code, "not_enrolled")


class AgainstServer(unittest.TestCase):
    """The phone's round trip against a real `doorstep-server demo`, in order."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="doorstep-py-server-")
        cls.server = DemoServer(os.path.join(cls.dir, "server.sqlite"))
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def phone(self, name):
        return d.DoorstepReplica.open(os.path.join(self.dir, name + ".db"))

    def test_1_enroll_offline_work_and_sync_after_restart(self):
        server = self.server
        p = self.phone("head-1")
        identity = p.enroll(server.url, server.codes["1"], "python test phone")
        self.assertEqual(identity.buildings, ["1"])
        report = p.sync()
        self.assertTrue(report.complete, report)
        self.assertEqual(report.rejected, [])
        self.assertEqual(p.pending_count(), 0)
        election = next(c for c in p.campaigns() if c.id == CAMPAIGN)
        self.assertEqual(len(election.questions[0].kind.candidates), 9)
        before = field_numbers(server, CAMPAIGN, "1")

        server.stop()
        with self.assertRaises(d.ApiError.Network):
            p.sync()
        units = [u.unit.code for u in p.units("1", CAMPAIGN)][4:8]
        visits = [p.record_visit(CAMPAIGN, unit, d.DoorOutcome.COLLECTED, "") for unit in units]
        ballots = [p.record_ballot(CAMPAIGN, unit, {"q1": yes("cand-5", "cand-6")}, None)
                   for unit in units[:2]]
        # The first owner corrects their ballot: the correction supersedes it.
        p.record_ballot(CAMPAIGN, units[0], {"q1": yes("cand-7")}, ballots[0])
        self.assertGreater(p.pending_count(), 0)

        server.start()
        report = p.sync()
        self.assertTrue(report.complete, report)
        self.assertEqual(p.pending_count(), 0)

        after = field_numbers(server, CAMPAIGN, "1")
        self.assertEqual(after["visits"] - before["visits"], 4)
        self.assertEqual(after["ballots"] - before["ballots"], 2)
        self.assertEqual(after["returned"] - before["returned"], 2)
        moved = {c: n - before["yes"].get(c, 0) for c, n in after["yes"].items()
                 if n != before["yes"].get(c, 0)}
        self.assertEqual(moved, {"cand-5": 1, "cand-6": 1, "cand-7": 1})
        self.assertIn(ballots[0], after["superseded"])
        exported = server.text(f"/api/v1/admin/campaigns/{CAMPAIGN}/exports/visits.csv",
                               server.admin_token())
        for visit in visits:
            self.assertIn(visit, exported)

    def test_2_two_phones_edit_one_household_offline_and_converge(self):
        server = self.server
        # The second phone of the same head enrolls with a fresh code, through a Python transport.
        first = self.phone("head-3-a")
        first.enroll(server.url, server.codes["3"], "phone A")
        first.sync()
        server.stop()
        server.start()  # A restart of the demo issues fresh codes.
        transport = UrllibTransport(server.url)
        second = self.phone("head-3-b")
        second.enroll_via(transport, server.url, server.codes["3"], "phone B")
        second.sync_via(transport)
        self.assertGreaterEqual(transport.requests, 2)

        unit = first.units("3", None)[0].unit.code
        first.edit_household(unit, d.HouseholdEdit(phone="13500000001"))
        second.edit_household(unit, d.HouseholdEdit(phone="13500000002"))
        for _ in range(2):
            first.sync()
            second.sync_via(transport)

        shown = []
        for p in (first, second):
            conflicts = [c for c in p.attention().household_conflicts
                         if c.unit == unit and c.field == "phone"]
            self.assertEqual(len(conflicts), 1, conflicts)
            self.assertEqual(sorted(conflicts[0].values), ["13500000001", "13500000002"])
            shown.append(household_of(p, unit).phone)
        self.assertEqual(shown[0], shown[1], "both phones show the same value")

        # Settling it: one phone writes the field again; after a sync nobody sees a conflict.
        first.edit_household(unit, d.HouseholdEdit(phone="13500000003"))
        first.sync()
        second.sync_via(transport)
        for p in (first, second):
            self.assertEqual([c for c in p.attention().household_conflicts if c.unit == unit], [])
            self.assertEqual(household_of(p, unit).phone, "13500000003")

    def test_3_transport_failures_arrive_as_network_and_rejected_by_server(self):
        class Down(d.SyncTransport):
            def post_sync(self, body, token):
                raise d.TransportError.Network("airplane mode")

            def post_enroll(self, body):
                raise d.TransportError.Network("airplane mode")

        p = self.phone("unenrolled")
        with self.assertRaises(d.ApiError.Network) as network:
            p.enroll_via(Down(), self.server.url, "AAAA-BBBB", "x")
        self.assertIn("airplane mode", network.exception.reason)
        with self.assertRaises(d.ApiError.RejectedByServer) as refused:
            p.enroll_via(UrllibTransport(self.server.url), self.server.url, "AAAA-BBBB-CCCC", "x")
        self.assertEqual(refused.exception.code, "invalid_enrollment_code")
        self.assertIsNone(p.identity())


def household_of(phone, unit):
    building = unit.split("-")[0]
    return next(u for u in phone.units(building, None) if u.unit.code == unit).household


def field_numbers(server, campaign, building):
    """What the admin API says field work moved: the building's progress and the tally."""
    token = server.admin_token()
    progress = server.request("GET", f"/api/v1/admin/campaigns/{campaign}/progress", token=token)
    row = next(b for b in progress["buildings"] if b["building"] == building)
    tally = server.request("GET", f"/api/v1/admin/campaigns/{campaign}/tally", token=token)
    (question,) = tally["questions"]
    return {
        "visits": row["visits"],
        "ballots": row["ballots_collected"]["headcount"],
        "returned": tally["returned"]["headcount"],
        "yes": {c["candidate"]: c["counts"]["yes"]["headcount"]
                for c in question["outcome"]["candidates"]},
        "superseded": tally["superseded"],
    }


def main():
    global SERVER_BINARY
    if len(sys.argv) < 2:
        sys.exit("usage: test_doorstep.py <doorstep-server binary>")
    SERVER_BINARY = sys.argv[1]
    suite = unittest.TestSuite()
    loader = unittest.TestLoader()
    suite.addTests(loader.loadTestsFromTestCase(Offline))
    suite.addTests(loader.loadTestsFromTestCase(AgainstServer))
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    failed = len(result.failures) + len(result.errors)
    print(f"{result.testsRun - failed} passed, {failed} failed")
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
