"""drumscribe web: the HTTP API against the command line, its bad-input answers and temporary files, and (marked
slow) the pages driven in Debian's chromium, headless, through selenium and the system chromedriver; the browser
run writes the screenshots docs/web-*.png.

The server is the real one (create_app over WebService, as `drumscribe web` builds it) on a free port, run by
uvicorn in a thread and stopped after the module.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
urllib3 = pytest.importorskip("urllib3")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "example.mp3"
DOCS = ROOT / "docs"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def _generator_missing() -> str:
    """Why the sample generator (offline/generator.py and its weights) cannot run here; '' when it can."""
    try:
        from drumscribe.offline.generator import load_generator

        load_generator()
    except Exception as exc:  # not there yet, or its weights are not
        return f"the sample generator does not load here ({type(exc).__name__}: {exc})"
    return ""


GENERATOR_MISSING = _generator_missing()


@pytest.fixture(scope="module")
def server():
    from drumscribe import cli
    from drumscribe.web.app import create_app
    from drumscribe.web_cli import WebService

    app = create_app(WebService(cli))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert time.monotonic() < deadline, "the server did not start in 30 s"
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}", "app": app}
    uv.should_exit = True
    thread.join(10)
    sock.close()
    app.state.cleanup()


@pytest.fixture(scope="module")
def http():
    return urllib3.PoolManager()


def _post(http, url, fields, headers=None):
    return http.request("POST", url, fields=fields, headers=headers or {}, timeout=120)


def _notes(path):
    from drumscribe.realtime.audition import read_midi_notes

    return read_midi_notes(path)


@pytest.fixture(scope="module")
def cli_outputs(tmp_path_factory):
    """`drumscribe transcribe` of the example, run as a user runs it: the .mid, the events and the score."""
    import subprocess

    out = tmp_path_factory.mktemp("cli")
    subprocess.run([sys.executable, "-m", "drumscribe", "transcribe", str(EXAMPLE), "-o", str(out / "x.mid"),
                    "--events", str(out / "x.csv"), "--no-progress"], check=True, capture_output=True, timeout=300)
    return out


@pytest.mark.slow  # three transcriptions of the example and an audition: 15 s here
def test_api_transcribe_gives_the_notes_of_the_command_line(server, http, cli_outputs, tmp_path):
    with open(EXAMPLE, "rb") as f:
        data = f.read()
    reply = _post(http, server["url"] + "/api/transcribe", {"audio": ("example.mp3", data, "audio/mpeg")})
    assert reply.status == 200, reply.data[:300]
    assert reply.headers["content-type"] == "audio/midi"
    (tmp_path / "web.mid").write_bytes(reply.data)
    cli_notes = _notes(cli_outputs / "x.mid")
    assert len(cli_notes) > 50  # the example's hits, not an empty file
    assert _notes(tmp_path / "web.mid") == cli_notes  # tick times, notes, velocities: integers in the file
    assert reply.data == (cli_outputs / "x.mid").read_bytes()  # tempo and bar 1 too

    reply = _post(http, server["url"] + "/api/transcribe", {"audio": ("example.mp3", data, "audio/mpeg")},
                  headers={"Accept": "application/json"})
    assert reply.status == 200
    result = json.loads(reply.data)
    assert [(n["note"], n["velocity"]) for n in result["notes"]] == [(n, v) for _, n, v in cli_notes]
    assert [n["time_s"] for n in result["notes"]] == pytest.approx([t for t, _, _ in cli_notes], abs=1e-5)
    assert result["duration_s"] == pytest.approx(31.5, abs=0.05)
    assert len(result["bars_s"]) >= 10 and len(result["beats_s"]) >= 4 * (len(result["bars_s"]) - 1)
    assert {lane["drum"] for lane in result["lanes"]} >= {"kick", "snare"}
    events = http.request("GET", server["url"] + result["files"]["csv"]).data
    assert events == (cli_outputs / "x.csv").read_bytes()
    score = http.request("GET", server["url"] + result["files"]["musicxml"])
    assert score.status == 200 and b"<score-partwise" in score.data

    reply = _post(http, server["url"] + "/api/audition", {"id": result["id"]})
    assert reply.status == 200, reply.data[:300]
    import io

    import soundfile

    audio, rate = soundfile.read(io.BytesIO(reply.data))
    assert audio.shape[0] / rate == pytest.approx(31.5, abs=3.0)
    assert abs(audio).max() > 0.1


@pytest.mark.slow
def test_api_drum_map_changes_the_notes(server, http, cli_outputs):
    reply = _post(http, server["url"] + "/api/transcribe", {"audio": ("example.mp3", EXAMPLE.read_bytes()),
                                                            "drum_map": "addictive_drums_2"},
                  headers={"Accept": "application/json"})
    assert reply.status == 200
    notes = json.loads(reply.data)["notes"]
    cli_notes = _notes(cli_outputs / "x.mid")
    assert [n["time_s"] for n in notes] == pytest.approx([t for t, _, _ in cli_notes], abs=1e-5)
    assert [n["note"] for n in notes] != [n for _, n, _ in cli_notes]

    reply = _post(http, server["url"] + "/api/transcribe", {"audio": ("example.mp3", EXAMPLE.read_bytes()),
                                                            "drum_map": "no_such_map"})
    assert reply.status == 400
    assert "no_such_map" in json.loads(reply.data)["error"]


def test_api_bad_input_is_one_line_and_uploads_are_removed(server, http, monkeypatch):
    from drumscribe.web import app as web_app

    url = server["url"]
    reply = _post(http, url + "/api/transcribe", {"audio": ("notes.txt", b"hello", "text/plain")})
    assert reply.status == 415
    error = json.loads(reply.data)["error"]
    assert "'notes.txt' is not an audio file" in error and "\n" not in error
    reply = _post(http, url + "/api/transcribe", {"audio": ("broken.wav", b"RIFF not really a wav" * 50)})
    assert reply.status == 400
    error = json.loads(reply.data)["error"]
    assert "'broken.wav' is not audio" in error and "Traceback" not in error
    assert str(server["app"].state.store.root) not in error  # the temporary path stays on the server

    monkeypatch.setattr(web_app, "MAX_UPLOAD_BYTES", 1000)
    monkeypatch.setattr(web_app, "MAX_UPLOAD_MB", 0.001)
    reply = _post(http, url + "/api/transcribe", {"audio": ("big.wav", b"\0" * 5000)})
    assert reply.status == 413
    assert "over the limit" in json.loads(reply.data)["error"]  # counted while copied
    reply = _post(http, url + "/api/transcribe", {"audio": ("big.wav", b"\0" * 200_000)})
    assert reply.status == 413
    assert "over the limit" in json.loads(reply.data)["error"]  # refused from its Content-Length
    monkeypatch.undo()

    uploads = server["app"].state.store.root / "uploads"
    assert uploads.is_dir() and list(uploads.iterdir()) == []  # every upload folder removed after its request
    schema = json.loads(http.request("GET", url + "/api/openapi.json").data)
    assert {"/api/transcribe", "/api/generate", "/api/sort", "/api/encode"} <= set(schema["paths"])
    reply = http.request("GET", url + "/api/results/0000/drums.mid")
    assert reply.status == 404 and "not here" in json.loads(reply.data)["error"]
    reply = http.request("GET", url + "/api/generate?class=snare&length_s=99")
    assert reply.status == 400 and "length_s 99" in json.loads(reply.data)["error"]


def test_api_sort_keeps_a_folder_s_paths(server, http):
    pytest.importorskip("torch")
    kits = Path("/usr/share/hydrogen/data/drumkits")
    samples = sorted(kits.glob("*/*.wav"))[:2] if kits.is_dir() else []
    if len(samples) < 2:
        pytest.skip("no Hydrogen kits here (hydrogen-drumkits) to sort")
    fields = [("files", ("pack/sub/a.wav", samples[0].read_bytes())),
              ("files", ("pack/../b.wav", samples[1].read_bytes())),
              ("files", ("pack/b.wav", samples[0].read_bytes())),  # the same path as the one before: both kept
              ("files", ("pack/readme.txt", b"not audio"))]
    reply = http.request("POST", server["url"] + "/api/sort", fields=fields, timeout=120)
    assert reply.status == 200, reply.data[:300]
    result = json.loads(reply.data)
    assert sorted(row["file"] for row in result["rows"]) == ["pack/b-2.wav", "pack/b.wav", "pack/sub/a.wav"]
    for row in result["rows"]:
        assert 0.0 <= row["confidence"] <= 1.0 and row["destination"].endswith(Path(row["file"]).name)
    import io
    import zipfile

    names = zipfile.ZipFile(io.BytesIO(http.request("GET", server["url"] + result["zip"]).data)).namelist()
    assert sorted(n for n in names if n.endswith(".wav")) == sorted(row["destination"] for row in result["rows"])
    reply = http.request("POST", server["url"] + "/api/sort", fields=[("files", ("x.txt", b"x"))])
    assert reply.status == 415 and "none of the 1 files is an audio file" in json.loads(reply.data)["error"]


def test_web_without_fastapi_says_what_to_install():
    import subprocess

    code = ("import sys; sys.modules['fastapi'] = None; from drumscribe.cli import main; "
            "sys.exit(main(['web', '--no-browser', '--port', '0']))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert run.stderr == ("drumscribe web: needs fastapi, which is not installed here; install it "
                          "with: pip install 'drumscribe[web]'\n")


def test_web_command_says_where_it_listens(tmp_path):
    """The command itself: the banner names 127.0.0.1 and who can reach it; a taken port is one line, exit 1."""
    import subprocess

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    run = subprocess.run([sys.executable, "-m", "drumscribe", "web", "--port", str(port), "--no-browser"],
                         capture_output=True, text=True, timeout=60)
    taken.close()
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1 and f"--port {port}: cannot listen there" in run.stderr
    import tempfile

    before = set(Path(tempfile.gettempdir()).glob("drumscribe-web-*"))
    proc = subprocess.Popen([sys.executable, "-m", "drumscribe", "web", "--port", "0", "--no-browser"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        time.sleep(1.0)  # serving by now
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert line.startswith("drumscribe web: serving on http://127.0.0.1:")
    assert "only this machine can reach it" in line
    assert proc.returncode == 0 and out.strip() == "drumscribe web: stopped", (out, err)
    assert "Traceback" not in err
    assert set(Path(tempfile.gettempdir()).glob("drumscribe-web-*")) <= before  # its temporary folder removed


@pytest.mark.skipif(bool(GENERATOR_MISSING), reason=GENERATOR_MISSING or "-")
def test_api_generate_knobs_change_the_sound(server, http):
    info = json.loads(http.request("GET", server["url"] + "/api/info").data)["generator"]
    assert info["available"], info
    low, high = info["knob_range"]
    cls = "snare" if "snare" in info["classes"] else info["classes"][0]

    def wav(knobs):
        query = ",".join(f"{k:g}" for k in knobs)
        reply = http.request("GET", server["url"] + f"/api/generate?class={cls}&knobs={query}&seed=3")
        assert reply.status == 200, reply.data[:300]
        assert reply.data[:4] == b"RIFF"
        return reply.data

    middle = [(low + high) / 2] * info["n_knobs"]
    moved = [high] + middle[1:]
    assert wav(middle) == wav(middle)  # the same knobs and seed: the same sound
    assert wav(moved) != wav(middle)
    import io

    import soundfile

    audio, rate = soundfile.read(io.BytesIO(wav(moved)))
    assert rate > 8000 and abs(audio).max() > 0.01
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, rate, format="WAV")
    reply = _post(http, server["url"] + "/api/encode", {"audio": ("moved.wav", buffer.getvalue())})
    assert reply.status == 200, reply.data[:300]
    encoded = json.loads(reply.data)
    assert encoded["class"] in info["classes"] and len(encoded["knobs"]) == info["n_knobs"]
    assert all(low <= k <= high for k in encoded["knobs"])
    silent = io.BytesIO()
    soundfile.write(silent, audio * 0, rate, format="WAV")
    reply = _post(http, server["url"] + "/api/encode", {"audio": ("silent.wav", silent.getvalue())})
    assert reply.status == 400 and "silent" in json.loads(reply.data)["error"]
    reply = http.request("GET", server["url"] + "/api/generate?class=no_such_class")
    assert reply.status == 400 and "no_such_class" in json.loads(reply.data)["error"]


# ---------------------------------------------------------------------------------------------------------------
# the pages in a real browser


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("Debian's chromium and chromium-driver are not installed (make setup installs them)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # selenium manager may look nothing up: the system chromium and driver only
    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)  # with the driver's path too: selenium looks nothing up or downloads
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900",
                "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.downloads = downloads
    yield driver
    driver.quit()


def _wait(driver, condition, timeout=120, what="the page"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(condition)
        if value:
            return value
        time.sleep(0.2)
    message = driver.execute_script("return document.getElementById('message').textContent")
    raise AssertionError(f"{what}: not there after {timeout} s (message: {message!r})")


def _open(driver, server, tab):
    driver.get(server["url"] + "/")
    _wait(driver, "return document.body.dataset.ready", 30, "the page's start")
    driver.find_element("id", f"tab-{tab}").click()


@pytest.mark.slow
def test_page_transcribe_drop_roll_download(server, browser, cli_outputs):
    _open(browser, server, "transcribe")
    # the drop zone's file input: the same transcribe() a drop calls
    browser.find_element("id", "file-transcribe").send_keys(str(EXAMPLE))
    count = int(_wait(browser, "return document.body.dataset.transcribed", 180, "the drum roll"))
    assert count == len(_notes(cli_outputs / "x.mid"))
    drawn = browser.execute_script("""
        const c = document.getElementById('roll'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let orange = 0;
        for (let i = 0; i < d.length; i += 4) {
            if (d[i] > 200 && d[i + 1] > 60 && d[i + 1] < 200 && d[i + 2] < 120) orange++;
        }
        return [c.width, c.height, orange];""")
    assert drawn[0] > 1000 and drawn[1] > 60 and drawn[2] > 500  # lanes of note marks, not a blank canvas
    lanes = browser.execute_script("return state.result.lanes.map(l => l.drum)")
    assert "kick" in lanes and "snare" in lanes
    said = browser.execute_script("return state.progressLog")
    assert any(label.startswith("uploading example.mp3") for label in said), said
    assert any(label.startswith("transcribing example.mp3") and label.endswith("%") for label in said), said

    browser.find_element("id", "dl-mid").click()
    deadline = time.monotonic() + 30
    while not list(browser.downloads.glob("*.mid")) and time.monotonic() < deadline:
        time.sleep(0.2)
    mids = list(browser.downloads.glob("*.mid"))
    assert [p.name for p in mids] == ["example.mid"]
    assert _notes(mids[0]) == _notes(cli_outputs / "x.mid")
    # the example's hits (examples/example.txt): most annotated onsets have a note within 50 ms, and the notes lie
    # on annotated onsets
    onsets = [float(line.split()[0]) for line in (ROOT / "examples" / "example.txt").read_text().splitlines()
              if line.strip()]
    times = [t for t, _, _ in _notes(mids[0])]
    assert sum(min(abs(t - a) for t in times) <= 0.05 for a in onsets) >= 0.85 * len(onsets)
    assert sum(min(abs(t - a) for a in onsets) <= 0.05 for t in times) >= 0.95 * len(times)

    resources = browser.execute_script("return performance.getEntriesByType('resource').map(r => r.name)")
    assert resources and all(r.startswith(server["url"] + "/") for r in resources), resources  # nothing from outside
    browser.find_element("id", "play-both").click()  # renders the audition, then plays both with the playhead
    _wait(browser, "return state.playing && state.playing.which === 'both' && "
                   "(audioContext().currentTime - state.playing.at) > 1.0", 120, "playing both")
    DOCS.mkdir(exist_ok=True)
    browser.save_screenshot(str(DOCS / "web-transcribe.png"))
    browser.find_element("id", "stop").click()


@pytest.mark.slow
def test_page_bad_upload_shows_a_message(server, browser, tmp_path):
    _open(browser, server, "transcribe")
    # dropped: a DataTransfer holding the file, through dragover and drop on the drop zone as a real drag sends them
    browser.execute_script("""
        const zone = document.getElementById('drop-transcribe'), transfer = new DataTransfer();
        transfer.items.add(new File(['eggs'], 'shopping.txt', {type: 'text/plain'}));
        zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: transfer, bubbles: true, cancelable: true}));
        zone.dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));""")
    message = _wait(browser, "const m = document.getElementById('message'); return !m.hidden && m.textContent",
                    30, "the message")
    assert "'shopping.txt' is not an audio file" in message
    fake = tmp_path / "fake.wav"
    fake.write_bytes(b"not a wav at all" * 100)
    browser.find_element("id", "file-transcribe").send_keys(str(fake))
    message = _wait(browser, "const m = document.getElementById('message');"
                             "return !m.hidden && m.textContent.includes('fake.wav') && m.textContent", 60)
    assert "is not audio drumscribe can read" in message and "Traceback" not in message
    assert browser.execute_script("return document.getElementById('result-transcribe').hidden")


def _one_shots(folder: Path) -> list:
    kits = Path("/usr/share/hydrogen/data/drumkits")
    chosen = []
    for kit in sorted(kits.glob("*"))[:3]:
        chosen += sorted(p for p in kit.iterdir() if p.suffix.lower() in (".wav", ".flac"))[:4]
    out = []
    for i, path in enumerate(chosen):
        target = folder / f"{i:02d}_{path.name}"
        shutil.copy(path, target)
        out.append(target)
    return out


@pytest.mark.slow
def test_page_sort_one_shots(server, browser, tmp_path):
    pytest.importorskip("torch")
    files = _one_shots(tmp_path)
    if not files:
        pytest.skip("no Hydrogen kits here (hydrogen-drumkits) to sort")
    _open(browser, server, "sort")
    browser.find_element("id", "file-sort").send_keys("\n".join(str(p) for p in files))
    count = int(_wait(browser, "return document.body.dataset.sorted", 120, "the sorted table"))
    assert count == len(files)
    rows = browser.execute_script("return [...document.querySelectorAll('#sort-table tbody tr')]"
                                  ".map(tr => [...tr.children].map(td => td.textContent))")
    assert sorted(r[0] for r in rows) == sorted(p.name for p in files)
    assert all(0.0 <= float(r[2]) <= 1.0 for r in rows)
    href = browser.find_element("id", "dl-zip").get_attribute("href")
    import io
    import zipfile

    names = zipfile.ZipFile(io.BytesIO(urllib3.PoolManager().request("GET", href).data)).namelist()
    assert sum(n.lower().endswith((".wav", ".flac")) for n in names) == len(files)
    browser.save_screenshot(str(DOCS / "web-sort.png"))


@pytest.mark.slow
@pytest.mark.skipif(bool(GENERATOR_MISSING), reason=GENERATOR_MISSING or "-")
def test_page_generate_knob_changes_the_sound(server, browser):
    _open(browser, server, "generate")
    first = _wait(browser, "return document.getElementById('gen-sound').dataset.sound", 60, "the first sound")
    browser.find_element("id", "gen-loop").click()
    browser.execute_script("""
        const k = document.querySelector('#knobs input');
        k.value = k.max; k.dispatchEvent(new Event('input'));""")
    second = _wait(browser, f"const s = document.getElementById('gen-sound').dataset.sound;"
                            f"return s !== '{first}' && s", 60, "a new sound")
    assert second != first
    assert browser.execute_script("return state.generate.looping && !!state.generate.source")
    browser.find_element("id", "gen-save").click()  # the sound saved: downloaded as a WAV and listed
    deadline = time.monotonic() + 30
    while not list(browser.downloads.glob("*-1.wav")) and time.monotonic() < deadline:
        time.sleep(0.2)
    saved = list(browser.downloads.glob("*-1.wav"))
    assert len(saved) == 1, list(browser.downloads.iterdir())
    url = browser.execute_script("return state.generate.url")
    assert saved[0].read_bytes() == urllib3.PoolManager().request("GET", server["url"] + url).data
    assert browser.execute_script("return document.querySelectorAll('#saved li').length") == 1
    kit = Path("/usr/share/hydrogen/data/drumkits")
    sample = next(iter(sorted(kit.glob("*/*.wav"))), None) if kit.is_dir() else None
    if sample is not None:  # a sample dropped sets the class and knobs from it, and the sound follows
        before = browser.execute_script("return [document.getElementById('gen-class').value, knobValues()]")
        browser.find_element("id", "file-generate").send_keys(str(sample))
        _wait(browser, "const m = document.getElementById('message');"
                       "return !m.hidden && m.textContent.startsWith('knobs set from')", 60, "the knobs set")
        after = browser.execute_script("return [document.getElementById('gen-class').value, knobValues()]")
        assert after != before
        _wait(browser, f"return document.getElementById('gen-sound').dataset.sound !== '{second}'", 60, "its sound")
    browser.save_screenshot(str(DOCS / "web-generate.png"))
    browser.find_element("id", "gen-loop").click()


def test_static_files_are_package_data():
    """The pages ship in the package: setup.cfg names drumscribe.web and its static files."""
    text = (ROOT / "setup.cfg").read_text()
    assert "drumscribe.web\n" in text and "drumscribe.web = static/*" in text
    for name in ("index.html", "app.js", "style.css"):
        assert (ROOT / "drumscribe" / "web" / "static" / name).is_file()
