"""Browser tests of the Pactum console (issue 15), in headless Chromium.

Debian's chromium (/usr/bin/chromium) driven by Playwright from PyPI; nothing downloads
a browser. Against a real devnet started here with `pactum devnet up`, each member's
console served by `pactum admin serve` over HTTPS:

1. onboarding: organisation A's operator proposes a fifth organisation with the
   onboarding wizard; C and then B approve from their own consoles (B's shows the
   badge); the proposal is applied, the new validator (started from the genesis, as its
   operator would) joins, and both consoles show it voting. The actions each
   organisation took are counted and printed;
2. the supply-chain flow, from registering the parties and a shipment to its recall,
   checked in the shipment's provenance timeline;
3. the healthcare consent flow: a provider's read refused without consent, allowed with
   it, refused after revocation, each in the patient's audit trail;
4. a proposal title holding markup is shown as text, and runs nothing;
and, on every page, the layout at 1280 and 390 px wide and a keyboard-only path.

Screenshots go to $PACTUM_SCREENSHOTS (default: target directory/console-screenshots).

Run: python3 tests/browser/console_test.py [--pactum PATH] [--keep]
"""

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

from playwright.sync_api import expect, sync_playwright

CHROMIUM = os.environ.get("PACTUM_CHROMIUM", "/usr/bin/chromium")
P2P, API, CONSOLE = 28600, 28700, 28800
WIDE, NARROW = 1280, 390
TIMEOUT_MS = 60_000


def run(*arguments, check=True):
    result = subprocess.run(arguments, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, arguments))} failed:\n{result.stdout}{result.stderr}")
    return result.stdout + result.stderr


def node_get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return json.load(response)


def wait(what, predicate, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # a node still starting
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def spki_pin(certificate):
    """Chromium's pin of a certificate's key: base64 SHA-256 of its SubjectPublicKeyInfo."""
    public = subprocess.run(["openssl", "x509", "-in", certificate, "-pubkey", "-noout"], capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=public, capture_output=True, check=True).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


class Devnet:
    def __init__(self, pactum, directory):
        self.pactum, self.directory = pactum, directory
        run(pactum, "devnet", "up", "--dir", directory, "--p2p-base-port", str(P2P),
            "--api-base-port", str(API), "--console-base-port", str(CONSOLE))

    def console(self, member):
        return f"https://127.0.0.1:{CONSOLE + member - 1}/"

    def token(self, member):
        path = os.path.join(self.directory, "consoles", f"member-{member}", "data", "login-token")
        with open(path) as file:
            return file.read().strip()

    def console_certificates(self):
        return [os.path.join(self.directory, "consoles", f"member-{member}", "tls", "certificate.pem") for member in range(1, 5)]

    def down(self):
        run(self.pactum, "devnet", "down", "--dir", self.directory, check=False)


class Operator:
    """One organisation's operator at its console, counting the actions taken."""

    def __init__(self, browser, devnet, member, screenshots):
        self.member, self.devnet, self.screenshots = member, devnet, screenshots
        self.context = browser.new_context(viewport={"width": WIDE, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.actions = []
        self.errors = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        # A 401 before login is logged by the browser as a failed load; script errors are not.
        self.page.on("console", lambda message: message.type == "error"
                     and "Failed to load resource" not in message.text
                     and self.errors.append(message.text))

    def act(self, what):
        self.actions.append(what)

    def login(self):
        self.page.goto(self.devnet.console(self.member))
        self.page.fill("#token", self.devnet.token(self.member))
        self.page.click("button[type=submit]")
        expect(self.page.locator("#who")).to_contain_text(f"Member {self.member}")

    def shoot(self, name):
        """Screenshots at 1280 and 390 px; at 390 nothing may overflow sideways."""
        for width in (WIDE, NARROW):
            self.page.set_viewport_size({"width": width, "height": 900})
            self.page.wait_for_timeout(150)
            overflow = self.page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{name} at {width} px overflows by {overflow} px"
            self.page.screenshot(path=os.path.join(self.screenshots, f"{name}-{width}.png"), full_page=True)
        self.page.set_viewport_size({"width": WIDE, "height": 900})

    def close(self):
        assert not self.errors, f"member {self.member}'s page logged errors: {self.errors}"
        self.context.close()


def make_member_5(pactum, directory):
    """What the new organisation prepares and sends: its CA certificate and its
    validator's join request (and the validator's own files, which it keeps)."""
    ca = os.path.join(directory, "member-5", "ca")
    validator = os.path.join(directory, "member-5", "validator-5")
    run(pactum, "certs", "init-ca", "--org", "Member 5", "--out", ca)
    run(pactum, "certs", "issue", "--ca", ca, "--role", "validator", "--name", "validator-5", "--san", "127.0.0.1", "--out", validator)
    join = os.path.join(directory, "member-5", "join.json")
    run(pactum, "certs", "join-request", "--validator", validator, "--name", "validator-5",
        "--address", f"127.0.0.1:{P2P + 4}", "--api-address", f"127.0.0.1:{API + 4}",
        "--chain-id", "pactum-devnet", "--out", join)
    return os.path.join(ca, "ca-certificate.pem"), join, validator


def commit_one(pactum, devnet_directory):
    """A token mint by the devnet client, committed: one more block."""
    with open(os.path.join(devnet_directory, "contracts.json")) as file:
        deployed = json.load(file)
    key = deployed["client_key"]
    public = run(pactum, "keys", "show", "--key", key, "--public").strip()
    run(pactum, "contract", "call", deployed["contracts"]["token"], "mint", f"account:{public}", "u128:1",
        "--key", key, "--node", f"http://127.0.0.1:{API}")


def start_validator_5(pactum, devnet_directory, validator):
    config = {
        "genesis": os.path.join(devnet_directory, "genesis.json"),
        "data_dir": os.path.join(validator, "data"),
        "certificate": os.path.join(validator, "certificate.pem"),
        "private_key": os.path.join(validator, "private-key.pem"),
        "listen": f"127.0.0.1:{P2P + 4}",
        "api_listen": f"127.0.0.1:{API + 4}",
    }
    path = os.path.join(validator, "node.json")
    with open(path, "w") as file:
        json.dump(config, file)
    log = open(os.path.join(validator, "node.log"), "w")
    return subprocess.Popen([pactum, "node", "run", "--config", path], stdout=log, stderr=log)


def test_onboarding(browser, devnet, pactum, work, screenshots):
    ca, join, validator = make_member_5(pactum, work)
    a = Operator(browser, devnet, 1, screenshots)
    b = Operator(browser, devnet, 2, screenshots)
    c = Operator(browser, devnet, 3, screenshots)
    for operator in (a, b, c):
        operator.login()
    a.shoot("overview")

    # A: open the wizard, choose the files Member 5 sent, sign.
    a.page.click("nav >> text=Onboard an organisation")
    a.act("open the onboarding wizard")
    a.page.set_input_files("#field-files", [ca, join])
    a.act("choose the new organisation's files (CA certificate and join request)")
    expect(a.page.locator("#dry-run")).to_contain_text("Valid: it needs 3 of 4")
    expect(a.page.locator("#dry-run")).to_contain_text("n = 4")
    expect(a.page.locator("#dry-run")).to_contain_text("n = 5")
    expect(a.page.locator("#title")).to_have_value("Onboard Member 5")
    a.shoot("wizard-onboard")
    a.page.click("#sign")
    a.act("sign and propose")
    expect(a.page.locator("main")).to_contain_text("Proposed: ok")
    proposal_id = a.page.locator("#proposal-link").get_attribute("href").split("/")[-1]

    # C, then B: each console shows the badge; each approves.
    for operator in (c, b):
        operator.page.goto(operator.devnet.console(operator.member) + "#/overview")
        expect(operator.page.locator("#badge")).to_have_text("1")
        if operator is b:
            b.shoot("overview-waiting")
        operator.page.click(f"main a[href='#/proposals/{proposal_id}']")
        operator.act("open the proposal waiting for its vote")
        expect(operator.page.locator("h1")).to_have_text("Onboard Member 5")
        if operator is b:
            b.shoot("proposal-open")
        operator.page.click("text=Approve")
        operator.act("approve")
        expect(operator.page.locator("main")).to_contain_text("approve: ok")
    # The threshold is met: applied; the consoles show it, and the planned epoch.
    for operator in (a, b):
        operator.page.goto(operator.devnet.console(operator.member) + f"#/proposals/{proposal_id}")
        expect(operator.page.locator("main .status").first).to_have_text("applied")
        expect(operator.page.locator("main")).to_contain_text("Member added: Member 5")
    b.shoot("proposal-applied")
    expect(b.page.locator("#badge")).to_be_hidden()

    # Member 5 starts its validator; it catches up, announces itself ready, and votes.
    process = start_validator_5(pactum, devnet.directory, validator)
    try:
        wait("the epoch with five validators", lambda: node_get(API, "/v1/status")["epoch"] == 1 and node_get(API, "/v1/status")["n"] == 5)
        key = node_get(API, "/v1/consortium")["validators"][-1]["public_key"]

        def signed_by_five():
            height = node_get(API, "/v1/status")["height"]
            start = node_get(API, "/v1/consortium")["epoch_start"]
            for h in range(start + 1, height + 1):
                signatures = node_get(API, f"/v1/blocks/{h}")["block"]["certificate"]["signatures"]
                if any(s["validator"] == key for s in signatures):
                    return True
            commit_one(pactum, devnet.directory)
            return False

        wait("a commit certificate signed by validator-5", signed_by_five)
        for operator in (a, b):
            operator.page.goto(operator.devnet.console(operator.member) + "#/overview")
            row = operator.page.locator("main tr", has_text="validator-5")
            expect(row).to_contain_text("Member 5")
            expect(row).to_contain_text("yes")
            expect(operator.page.locator("main .cards")).to_contain_text("5 / 1 / 4")
        a.shoot("overview-five")
        a.page.click("nav >> text=Members and certificates")
        expect(a.page.locator("main")).to_contain_text("Member 5")
        a.shoot("members")
        a.page.click("nav >> text=Proposals")
        expect(a.page.locator("main")).to_contain_text("Onboard Member 5")
        a.shoot("proposals")
        a.page.click("nav >> text=Audit log")
        expect(a.page.locator("main")).to_contain_text("propose")
        a.shoot("audit")
    finally:
        process.terminate()
        process.wait(timeout=30)

    counts = {"Member 1 (proposer)": a.actions, "Member 2": b.actions, "Member 3": c.actions}
    for organisation, actions in counts.items():
        print(f"onboarding: {organisation}: {len(actions)} actions: {'; '.join(actions)}")
        assert len(actions) <= 3, f"{organisation} took {len(actions)} actions"
    for operator in (a, b, c):
        operator.close()


def test_markup_is_text(browser, devnet, screenshots):
    a = Operator(browser, devnet, 1, screenshots)
    a.login()
    title = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">"
    a.page.click("nav >> text=New proposal")
    a.page.click("text=Changes as JSON")
    changes = [{"change": "set_policy", "class": "contracts", "policy": {"rule": "all"}}]
    a.page.fill("#field-changes", json.dumps(changes))
    a.page.click("#check")
    expect(a.page.locator("#dry-run")).to_contain_text("Valid")
    a.page.fill("#title", title)
    a.page.click("#sign")
    expect(a.page.locator("main")).to_contain_text("Proposed: ok")
    a.page.click("#proposal-link")
    expect(a.page.locator("h1")).to_have_text(title)
    assert a.page.evaluate("window.__pwned") is None, "the title ran"
    assert a.page.locator("main script, main img").count() == 0, "the title became markup"
    a.page.click("nav >> text=Proposals")
    expect(a.page.locator("main table")).to_contain_text(title)
    assert a.page.evaluate("window.__pwned") is None
    a.shoot("proposal-markup")
    a.close()


def test_explorer(browser, devnet, pactum, screenshots):
    """Blocks live from the event stream, a block's transactions, a receipt with its
    events, and search."""
    operator = Operator(browser, devnet, 2, screenshots)
    operator.login()
    page = operator.page
    page.click("nav >> text=Explorer")
    expect(page.locator("main table")).to_contain_text("1")
    expect(page.locator("#live")).to_contain_text("Live")
    # A block committed now appears without a reload, named by the stream's block event.
    height = node_get(API + 1, "/v1/status")["height"]
    commit_one(pactum, devnet.directory)
    live = page.locator("#live")

    def streamed():
        text = live.text_content() or ""
        return text.startswith("Live: block ") and int(text.split()[2]) > height
    wait("the committed block in the live explorer", streamed, seconds=30)
    newest = int(live.text_content().split()[2])
    expect(page.locator("main table tbody tr >> nth=0")).to_contain_text(str(newest))
    operator.shoot("explorer")
    # Block 6 deploys the token (pactum devnet up deploys the samples in blocks 6 to 9).
    page.fill("#search", "6")
    page.click("main button[type=submit]")
    expect(page.locator("h1")).to_have_text("Block 6")
    page.click("main table a.mono >> nth=0")
    expect(page.locator("h1")).to_have_text("Transaction")
    expect(page.locator("main")).to_contain_text("success")
    operator.shoot("transaction")
    transaction_hash = page.url.split("/")[-1]
    # Search by hash finds the same transaction; by key, the sender's account.
    page.goto(devnet.console(2) + "#/explorer")
    page.fill("#search", transaction_hash)
    page.click("main button[type=submit]")
    expect(page.locator("main")).to_contain_text(transaction_hash)
    page.click("main a[href^='#/explorer/block/']")
    page.click("main a[href^='#/explorer/account/'] >> nth=0")
    expect(page.locator("h1")).to_have_text("Account")
    expect(page.locator("main")).to_contain_text("Enrolled")
    operator.close()


def test_identities_and_contracts(browser, devnet, pactum, work, screenshots):
    """Enrol a client certificate as an identity, then query and call a contract as it."""
    client = os.path.join(work, "alice")
    run(pactum, "certs", "issue", "--ca", os.path.join(devnet.directory, "organisations", "member-2"),
        "--role", "client", "--name", "alice", "--out", client)
    operator = Operator(browser, devnet, 2, screenshots)
    operator.login()
    page = operator.page
    page.click("nav >> text=Identities")
    page.fill("#identity-name", "alice")
    with open(os.path.join(client, "certificate.pem")) as file:
        page.fill("#identity-certificate", file.read())
    with open(os.path.join(client, "private-key.pem")) as file:
        page.fill("#identity-key", file.read())
    page.click("main button[type=submit]")
    expect(page.locator("main")).to_contain_text("Enrolled alice: ok")
    row = page.locator("main tr", has_text="alice")
    expect(row).to_contain_text("yes")
    expect(row).to_contain_text("client")
    operator.shoot("identities")
    with open(os.path.join(devnet.directory, "contracts.json")) as file:
        token = json.load(file)["contracts"]["token"]
    page.click("nav >> text=Contracts")
    page.select_option("#call-identity", "alice")
    page.select_option("#call-contract", token)
    # The form follows the token's declared interface: a method list, typed fields, and
    # the return data decoded by the declared return type.
    expect(page.locator("#call-interface")).to_contain_text("declares 9 methods")
    page.select_option("#call-method", "name")
    expect(page.locator("#call-fields")).to_contain_text("returns String")
    page.click("#query")
    expect(page.locator("#returned")).to_have_text("Devnet Token")
    # A signed call that the contract refuses: alice is not the token's issuer.
    page.select_option("#call-method", "mint")
    public = run(pactum, "keys", "show", "--key", os.path.join(client, "private-key.pem"), "--public").strip()
    page.fill("#arg-to", public)
    page.fill("#arg-amount", "5")
    page.click("#call")
    expect(page.locator("#call-result")).to_contain_text("call: reverted")
    # A value that is not of the declared type is refused before anything is signed.
    page.fill("#arg-amount", "-5")
    page.click("#call")
    expect(page.locator("#call-result")).to_contain_text("argument amount: \"-5\" is not a u128")
    operator.shoot("contracts")
    page.goto(devnet.console(2) + f"#/explorer/contract/{token}")
    expect(page.locator("main")).to_contain_text("transfer_from")
    operator.close()


def enrol(page, pactum, devnet, work, member, name):
    """Issues a client certificate of `member`'s CA, enrols it on the Identities page and
    returns its public key."""
    directory = os.path.join(work, name)
    run(pactum, "certs", "issue", "--ca", os.path.join(devnet.directory, "organisations", f"member-{member}"),
        "--role", "client", "--name", name, "--out", directory)
    page.click("nav >> text=Identities")
    page.fill("#identity-name", name)
    with open(os.path.join(directory, "certificate.pem")) as file:
        page.fill("#identity-certificate", file.read())
    with open(os.path.join(directory, "private-key.pem")) as file:
        page.fill("#identity-key", file.read())
    page.click("main button[type=submit]")
    expect(page.locator("main")).to_contain_text(f"Enrolled {name}: ok")
    return run(pactum, "keys", "show", "--key", os.path.join(directory, "private-key.pem"), "--public").strip()


def act(operator, identity, method, fields, expected):
    """One action on an application page, as `identity`: fill the method's form, sign."""
    page = operator.page
    page.select_option("#app-identity", identity)
    for name, value in fields.items():
        if isinstance(value, bool):
            page.set_checked(f"#{method}-{name}", value)
        else:
            page.fill(f"#{method}-{name}", value)
    page.click(f"#{method}-submit")
    operator.act(f"{identity}: {method}")
    expect(page.locator(f"#{method}-outcome")).to_contain_text(expected)


def test_supply_chain(browser, devnet, pactum, work, screenshots):
    """A shipment from registration to recall, checked in its provenance timeline."""
    operator = Operator(browser, devnet, 1, screenshots)
    operator.login()
    page = operator.page
    farm = enrol(page, pactum, devnet, work, 1, "farm")
    carrier = enrol(page, pactum, devnet, work, 1, "carrier")
    page.click("nav >> text=Supply chain")
    expect(page.locator("h1")).to_have_text("Supply chain")
    # The devnet client deployed the sample contracts, so it registers the parties.
    act(operator, "devnet-client", "register_party", {"party": farm, "name": "Green Valley Farm", "role": "producer"}, "done (devnet-client)")
    act(operator, "devnet-client", "register_party", {"party": carrier, "name": "Swift Freight", "role": "carrier"}, "done (devnet-client)")
    page.fill("#shared-id", "crate-42")
    act(operator, "farm", "register_product", {"origin": "Valencia", "batch": "B-7", "metadata_hash": "", "location": "Valencia farm"}, "done (farm)")
    act(operator, "farm", "record_reading", {"sensor": "temperature_mc", "value": "4000"}, "done (farm)")
    act(operator, "farm", "transfer_custody", {"to": carrier, "location": "Port of Valencia"}, "done (farm)")
    act(operator, "carrier", "record_reading", {"sensor": "temperature_mc", "value": "11500"}, "done (carrier)")
    act(operator, "carrier", "record_inspection", {"passed": False, "report_hash": "", "notes": "seal broken"}, "done (carrier)")
    act(operator, "carrier", "flag", {"reason": "cold chain broken"}, "done (carrier)")
    act(operator, "farm", "recall", {"reason": "temperature excursion"}, "done (farm)")
    # A recalled shipment no longer moves: the contract refuses, and says why.
    act(operator, "carrier", "transfer_custody", {"to": farm, "location": "Rotterdam"}, "product `crate-42` is recalled")
    page.click("#show-provenance")
    expect(page.locator("#product-status")).to_have_text("recalled")
    steps = page.locator("#timeline li")
    expect(steps).to_have_count(7)
    kinds = steps.evaluate_all("items => items.map((item) => item.dataset.kind)")
    assert kinds == ["registered", "reading", "custody", "reading", "inspection", "flagged", "recalled"], kinds
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Sensor reading: temperature_mc = 11500")
    expect(timeline).to_contain_text("Inspection failed: seal broken")
    expect(timeline).to_contain_text("Flagged: cold chain broken")
    expect(timeline).to_contain_text("Recalled: temperature excursion")
    expect(steps.nth(3)).to_contain_text("by carrier")
    expect(steps.nth(2)).to_contain_text("at Port of Valencia")
    operator.shoot("supply-chain")
    operator.close()


def test_healthcare(browser, devnet, pactum, work, screenshots):
    """Consent: a read refused without it, allowed with it, refused after revocation,
    each in the patient's audit trail."""
    operator = Operator(browser, devnet, 1, screenshots)
    operator.login()
    page = operator.page
    clinic = enrol(page, pactum, devnet, work, 1, "clinic")
    patient = enrol(page, pactum, devnet, work, 1, "ana")
    page.click("nav >> text=Healthcare")
    expect(page.locator("h1")).to_have_text("Healthcare")
    act(operator, "devnet-client", "register_provider", {"provider": clinic, "name": "City Clinic"}, "done (devnet-client)")
    act(operator, "ana", "register_patient", {}, "done (ana)")
    act(operator, "clinic", "read_records", {"patient": patient}, "Read refused")
    act(operator, "ana", "grant_consent", {"provider": clinic}, "done (ana)")
    # A reference to the record (its hash and where the clinic keeps it), never the record.
    record_hash = hashlib.sha3_256(b"Ana's blood panel, 2026-11-30").hexdigest()
    act(operator, "clinic", "add_record", {"patient": patient, "content_hash": record_hash,
        "pointer": "https://records.city-clinic.example/ana/blood-panel-2026-11-30"}, "done (clinic)")
    act(operator, "clinic", "read_records", {"patient": patient}, "Read allowed: 1 record reference")
    expect(page.locator("#read_records-outcome")).to_contain_text("blood-panel-2026-11-30")
    act(operator, "ana", "revoke_consent", {"provider": clinic}, "done (ana)")
    act(operator, "clinic", "read_records", {"patient": patient}, "Read refused")
    act(operator, "ana", "audit_trail", {}, "My audit trail: done")
    rows = page.locator("#audit_trail-outcome tbody tr")
    expect(rows).to_have_count(6)
    trail = rows.evaluate_all("rows => rows.map((row) => [row.cells[0].textContent, row.cells[1].textContent])")
    actions = [action for _, action in trail]
    assert actions == ["read_refused", "consent_granted", "record_added", "records_read", "consent_revoked", "read_refused"], trail
    assert all(actor.startswith("clinic") for actor, action in trail if action in ("read_refused", "records_read", "record_added")), trail
    operator.shoot("healthcare")
    # Only the patient reads the trail.
    act(operator, "clinic", "audit_trail", {}, "refused — not a registered patient")
    operator.close()


def sample_module(pactum, name):
    """A sample contract's module, as the build left it beside the binary."""
    import glob
    target = os.path.dirname(os.path.dirname(pactum))
    built = glob.glob(os.path.join(target, "release", "build", "pactum-contract-wasm-*", "out", f"pactum_contract_{name}.wasm"))
    assert built, f"no built {name} module under {target}"
    return max(built, key=os.path.getmtime)


def test_contract_wizards(browser, devnet, pactum, screenshots):
    """Approving a module for deployment and upgrading a contract: chosen as files, each
    checked by the dry run before anything can be signed."""
    operator = Operator(browser, devnet, 3, screenshots)
    operator.login()
    page = operator.page
    module = sample_module(pactum, "escrow")
    with open(module, "rb") as file:
        code_hash = hashlib.sha3_256(file.read()).hexdigest()
    page.goto(devnet.console(3) + "#/new/approve_code")
    expect(page.locator("h1")).to_have_text("Approve a contract for deployment")
    page.set_input_files("#field-code", module)  # the dry run runs once the file is read
    expect(page.locator("#dry-run")).to_contain_text("Valid")
    expect(page.locator("main")).to_contain_text(f"Approve code {code_hash[:8]}")
    expect(page.locator("#sign")).to_be_enabled()
    with open(os.path.join(devnet.directory, "contracts.json")) as file:
        token = json.load(file)["contracts"]["token"]
    page.goto(devnet.console(3) + "#/new/upgrade_contract")
    expect(page.locator("h1")).to_have_text("Upgrade a contract")
    page.select_option("#field-contract", token)
    page.set_input_files("#field-code", sample_module(pactum, "token"))
    expect(page.locator("#dry-run")).to_contain_text("Valid")
    expect(page.locator("main")).to_contain_text(f"Upgrade contract {token[:8]}")
    operator.shoot("wizard-upgrade")
    operator.close()


def test_keyboard(browser, devnet, screenshots):
    """Log in and reach a page by keyboard alone."""
    operator = Operator(browser, devnet, 4, screenshots)
    page = operator.page
    page.goto(devnet.console(4))
    for _ in range(5):
        page.keyboard.press("Tab")  # the skip link first, then the token field
        if page.evaluate("document.activeElement.id") == "token":
            break
    assert page.evaluate("document.activeElement.id") == "token", "Tab does not reach the token field"
    page.keyboard.type(devnet.token(4))
    page.keyboard.press("Enter")
    expect(page.locator("#who")).to_contain_text("Member 4")
    # Focus is on the page's content after login; the menu is just before it.
    for _ in range(12):
        page.keyboard.press("Shift+Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "Members and certificates":
            break
    assert page.evaluate("document.activeElement.textContent.trim()") == "Members and certificates"
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Members and certificates")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    print(f"keyboard: reached the members page by Tab and Enter (focus outline: {outline})")
    operator.close()


def main():
    expect.set_options(timeout=TIMEOUT_MS)
    parser = argparse.ArgumentParser()
    parser.add_argument("--pactum", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/pactum/target")), "release", "pactum"))
    parser.add_argument("--keep", action="store_true", help="keep the devnet directory")
    arguments = parser.parse_args()
    screenshots = os.environ.get("PACTUM_SCREENSHOTS", os.path.join(os.path.dirname(os.path.dirname(arguments.pactum)), "console-screenshots"))
    os.makedirs(screenshots, exist_ok=True)
    work = tempfile.mkdtemp(prefix="pactum-console-")
    devnet = Devnet(arguments.pactum, os.path.join(work, "devnet"))
    started = time.monotonic()
    try:
        pins = ",".join(spki_pin(certificate) for certificate in devnet.console_certificates())
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    # The consoles' keys, pinned: browsers cannot check the member CAs' Ed25519
                    # signatures, so the test trusts exactly these keys (docs/console.md).
                    f"--ignore-certificate-errors-spki-list={pins}",
                ],
            )
            for name, test in [
                ("onboarding", lambda: test_onboarding(browser, devnet, arguments.pactum, work, screenshots)),
                ("markup is text", lambda: test_markup_is_text(browser, devnet, screenshots)),
                ("explorer", lambda: test_explorer(browser, devnet, arguments.pactum, screenshots)),
                ("identities and contracts", lambda: test_identities_and_contracts(browser, devnet, arguments.pactum, work, screenshots)),
                ("supply chain", lambda: test_supply_chain(browser, devnet, arguments.pactum, work, screenshots)),
                ("healthcare", lambda: test_healthcare(browser, devnet, arguments.pactum, work, screenshots)),
                ("contract wizards", lambda: test_contract_wizards(browser, devnet, arguments.pactum, screenshots)),
                ("keyboard", lambda: test_keyboard(browser, devnet, screenshots)),
            ]:
                test_started = time.monotonic()
                test()
                print(f"browser test {name}: passed in {time.monotonic() - test_started:.1f} s")
            browser.close()
    finally:
        devnet.down()
        if not arguments.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"browser tests passed in {time.monotonic() - started:.1f} s; screenshots in {screenshots}")


if __name__ == "__main__":
    sys.exit(main())
