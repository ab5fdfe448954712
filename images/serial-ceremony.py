#!/usr/bin/env python3
"""Drives the appliance's terminal ui on the serial console of a qemu guest.

The boot test runs it against qemu's serial port (a unix socket). It keeps an
80x25 screen from what the appliance draws (the escape sequences of
TERM=linux that tcell writes), and answers each screen the way the release
officer and the holders would: confirm the date, choose the stick, compare
the request fingerprint with the one the sender printed (the test passes the
one `airlock bundle create` printed; a different one is refused), approve as
each holder and type that holder's PIN, choose the stick for the response,
and leave the done screen. It types only keys; everything it answers is on
the screen first. A screen it does not expect, a refusal or a timeout fails
the run with the screen printed.

  serial-ceremony.py --socket PATH --fingerprint WORDS --role ROLE \
      --holder alice=PIN --holder bob=PIN [--timeout SECONDS] [--screens FILE] [--raw FILE]

Exit status 0: the done screen says SIGNED and names the stick.
"""
import argparse
import codecs
import re
import socket
import sys
import time

COLS, ROWS = 80, 25
RAW_KEEP = 1 << 20


class Screen:
    """A small terminal: enough of ECMA-48 for what tcell draws on TERM=linux."""

    def __init__(self):
        self.cells = [[" "] * COLS for _ in range(ROWS)]
        self.x = self.y = 0
        self.saved = (0, 0)
        self.state = "text"
        self.seq = ""
        self.dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.changed = time.monotonic()

    def text(self):
        return "\n".join("".join(r).rstrip() for r in self.cells)

    def flat(self):
        """The screen as one line per row joined by spaces, for matching
        phrases that the frame wraps."""
        return " ".join(" ".join("".join(r).split()) for r in self.cells)

    def _put(self, ch):
        # No automatic wrap: tcell places every run with the cursor, and a
        # character past the last column (or a wrap at the bottom right,
        # which would scroll) is not part of the screen it means.
        if self.x >= COLS:
            return
        self.cells[self.y][self.x] = ch
        self.x += 1

    def _lf(self):
        if self.y == ROWS - 1:
            self.cells.pop(0)
            self.cells.append([" "] * COLS)
        else:
            self.y += 1

    def _clip(self):
        self.x = max(0, min(COLS - 1, self.x))
        self.y = max(0, min(ROWS - 1, self.y))

    def _csi(self, seq):
        final, body = seq[-1], seq[:-1]
        if body.startswith("?") or body.startswith(">") or body.startswith("="):
            return  # private modes: cursor visibility, wrap, mouse
        try:
            args = [int(a) if a else 0 for a in body.split(";")] if body else []
        except ValueError:
            return
        a0 = args[0] if args else 0
        n = a0 or 1
        if final in "Hf":
            self.y = (args[0] if len(args) > 0 and args[0] else 1) - 1
            self.x = (args[1] if len(args) > 1 and args[1] else 1) - 1
            self._clip()
        elif final == "A":
            self.y -= n
            self._clip()
        elif final == "B":
            self.y += n
            self._clip()
        elif final == "C":
            self.x += n
            self._clip()
        elif final == "D":
            self.x -= n
            self._clip()
        elif final == "G":
            self.x = n - 1
            self._clip()
        elif final == "d":
            self.y = n - 1
            self._clip()
        elif final == "J":
            if a0 == 0:
                self.cells[self.y][self.x:] = [" "] * (COLS - self.x)
                for r in range(self.y + 1, ROWS):
                    self.cells[r] = [" "] * COLS
            elif a0 == 1:
                for r in range(0, self.y):
                    self.cells[r] = [" "] * COLS
                self.cells[self.y][: self.x + 1] = [" "] * (self.x + 1)
            else:
                self.cells = [[" "] * COLS for _ in range(ROWS)]
        elif final == "K":
            row = self.cells[self.y]
            if a0 == 0:
                row[self.x:] = [" "] * (COLS - self.x)
            elif a0 == 1:
                row[: self.x + 1] = [" "] * (self.x + 1)
            else:
                self.cells[self.y] = [" "] * COLS
        elif final == "X":
            end = min(COLS, self.x + n)
            self.cells[self.y][self.x:end] = [" "] * (end - self.x)
        elif final == "P":
            row = self.cells[self.y]
            del row[self.x: self.x + n]
            row.extend([" "] * (COLS - len(row)))
        elif final == "@":
            row = self.cells[self.y]
            for _ in range(n):
                row.insert(self.x, " ")
            del row[COLS:]
        # m (colours), r (scroll region), h/l and the rest change no text.

    def feed(self, data):
        s = self.dec.decode(data)
        for ch in s:
            self._char(ch)
        if s:
            self.changed = time.monotonic()

    def _char(self, ch):
        st = self.state
        if st == "esc":
            if ch == "[":
                self.state, self.seq = "csi", ""
            elif ch == "]":
                self.state = "osc"
            elif ch in "()*+":
                self.state = "charset"
            elif ch == "7":
                self.saved, self.state = (self.x, self.y), "text"
            elif ch == "8":
                (self.x, self.y), self.state = self.saved, "text"
            elif ch == "c":
                self.__init__()
            else:
                self.state = "text"
            return
        if st == "csi":
            self.seq += ch
            if "@" <= ch <= "~":
                self._csi(self.seq)
                self.state = "text"
            elif len(self.seq) > 32:
                self.state = "text"
            return
        if st == "osc":
            if ch in "\x07\x1b":
                self.state = "text"
            return
        if st == "charset":
            self.state = "text"
            return
        if ch == "\x1b":
            self.state = "esc"
        elif ch == "\r":
            self.x = 0
        elif ch == "\n":
            self._lf()
        elif ch == "\b":
            self.x = max(0, self.x - 1)
        elif ch == "\t":
            self.x = min(COLS - 1, (self.x // 8 + 1) * 8)
        elif ch < " " or ch == "\x7f":
            pass  # bell, shift in/out (line drawing on TERM=linux)
        else:
            self._put(ch)


class Console:
    def __init__(self, path, log, raw=None, connect_within=60):
        deadline = time.monotonic() + connect_within
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError as e:
                self.sock.close()
                if time.monotonic() > deadline:
                    sys.exit(f"serial-ceremony: cannot connect to the serial console {path}: {e}")
                time.sleep(0.2)
        self.sock.settimeout(0.2)
        self.screen = Screen()
        self.log = log
        self.closed = False
        self.raw = b""  # what arrived since the last keys were typed
        self.rawlog = raw

    def pump(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end and not self.closed:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                self.closed = True
                break
            if self.rawlog:
                self.rawlog.write(data)
                self.rawlog.flush()
            self.screen.feed(data)
            self.raw = (self.raw + data)[-RAW_KEEP:]

    def words(self):
        """The text drawn since the last keys were typed, escape sequences
        and line drawing removed, words joined by one space: the same
        phrases as on the screen, independent of where they were drawn."""
        t = re.sub(rb"\x1b\[[0-9;?>= ]*[@-~]|\x1b[^\[]|[\x00-\x1f\x7f]", b" ", self.raw)
        t = t.decode("utf-8", "replace")
        t = re.sub(r"[\u2500-\u257f]", " ", t)
        return " ".join(t.split())

    def send(self, keys, why):
        print(f"serial-ceremony: {why}: typing {keys!r}" if "PIN" not in why else f"serial-ceremony: {why}", flush=True)
        self.raw = b""
        for k in keys:
            self.sock.sendall(k.encode())
            self.pump(0.15)

    def snapshot(self, title):
        if self.log:
            self.log.write(f"==== {title} ({time.strftime('%H:%M:%S')})\n{self.screen.text()}\n")
            self.log.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--fingerprint", required=True, help="request fingerprint the sender printed")
    ap.add_argument("--role", required=True)
    ap.add_argument("--holder", action="append", required=True, help="NAME=PIN, in any order")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--screens", help="append every screen answered to this file")
    ap.add_argument("--raw", help="write everything the console sends, as received, to this file")
    a = ap.parse_args()
    holders = dict(h.split("=", 1) for h in a.holder)
    log = open(a.screens, "a") if a.screens else None
    raw = open(a.raw, "ab") if a.raw else None
    con = Console(a.socket, log, raw)

    # Each step: the phrase that must be on the screen, what to type, and
    # what it means. A step runs once, in any order the appliance asks.
    steps = [
        ("date", lambda f: "today's date" in f and re.search(r"> 20\d\d-\d\d-\d\d", f), ["\r"], "confirm today's date"),
        ("stick", lambda f: "import from USB" in f and "Choose the USB stick" in f, ["1"], "choose the stick with the bundle"),
        ("fingerprint", lambda f: "compare the request fingerprint" in f and a.fingerprint in f, ["y", "\r"],
         f"the request fingerprint on screen is the sender's ({a.fingerprint})"),
    ]
    for name, pin in holders.items():
        steps.append((f"approve {name}", lambda f, n=name: re.search(rf"approve {re.escape(a.role)} version \d+ - {re.escape(n)}\b", f),
                      ["y", "\r"], f"{name} approves"))
        steps.append((f"pin {name}", lambda f, n=name: f"PIN for {n}" in f, list(pin) + ["\r"], f"{name} types the PIN"))
    steps.append(("export", lambda f: "write the response to a USB stick" in f and "Choose the USB stick" in f, ["1"],
                  "choose the stick for the response"))
    done = set()
    # Choosing a stick is asked only when the appliance picks one on screen
    # (not with --usb or --export-usb DEVICE); the rest must all happen.
    optional = {"stick", "export"}
    failures = [("REFUSED", "the ceremony was refused"), ("export failed", "the export failed")]
    start = time.monotonic()
    last_step = start
    other_fp_since = None
    while True:
        con.pump(0.5)
        # The screen, and the words drawn since the last answer (the same
        # phrases, wherever on the screen they were drawn).
        f = con.screen.flat() + " | " + con.words()
        # Act only on a screen that has settled (drawn completely).
        if time.monotonic() - con.screen.changed < 0.6 and not con.closed:
            continue
        # A request fingerprint that is not the sender's is refused, as the
        # officer would: r then Enter, and the run fails.
        if "compare the request fingerprint" in f and a.fingerprint not in f and "fingerprint" not in done:
            other_fp_since = other_fp_since or time.monotonic()
            if time.monotonic() - other_fp_since > 3:
                con.snapshot("fingerprint differs")
                con.send(["r", "\r"], "the request fingerprint on screen is not the sender's: refuse")
                con.pump(3)
                print(f"serial-ceremony: FAIL: the request fingerprint on screen is not {a.fingerprint!r}; the screen shows:\n{con.screen.text()}", file=sys.stderr)
                return 1
        else:
            other_fp_since = None
        for word, why in failures:
            if word in f and "SIGNED" not in f:
                con.snapshot("failure")
                print(f"serial-ceremony: FAIL: {why}; the screen shows:\n{con.screen.text()}", file=sys.stderr)
                return 1
        if "SIGNED" in f and all(s[0] in done or s[0] in optional for s in steps):
            con.snapshot("done")
            print(f"serial-ceremony: the done screen after {time.monotonic() - start:.0f} s:\n{con.screen.text()}", flush=True)
            if "TRANSFER" not in f and ":/" not in f:
                print("serial-ceremony: FAIL: the done screen does not name the stick", file=sys.stderr)
                return 1
            con.send(["\r"], "leave the done screen")
            con.pump(2)
            return 0
        acted = False
        for name, match, keys, why in steps:
            if name in done or not match(f):
                continue
            con.snapshot(name)
            con.send(keys, why)
            done.add(name)
            last_step = time.monotonic()
            acted = True
            break
        if acted:
            continue
        if con.closed:
            print(f"serial-ceremony: FAIL: the serial console closed; done: {sorted(done)}; the screen shows:\n{con.screen.text()}", file=sys.stderr)
            return 1
        if time.monotonic() - start > a.timeout or (done and time.monotonic() - last_step > 300):
            con.snapshot("timeout")
            print(f"serial-ceremony: FAIL: timed out; done: {sorted(done)}; the screen shows:\n{con.screen.text()}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
