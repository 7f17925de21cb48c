#!/usr/bin/env node
// Run a Python script under the official WebAssembly MicroPython (npm package
// @micropython/micropython-webassembly-pyscript, pinned in package.json), so host
// tests can check that lib/ really runs on MicroPython and gives the same bytes as
// CPython.
//
// Usage:
//   node tools/mpy_run.mjs [--heap 1m] [--mpy DIR] [--romfs IMAGE] [--file HOSTPATH:MPPATH]... [--stdin] SCRIPT.py [ARGS...]
//
//   --heap N        MicroPython heap size: bytes, or with a k/m suffix (default 1m).
//   --file H:M      copy host file H (binary-safe) to MicroPython path M (absolute;
//                   parent directories are created). May be repeated.
//   --mpy DIR       mount the tree DIR at /lib instead of the repo's lib/ sources: the
//                   compiled .mpy files as tools/deploy.py builds them (DIR/hanport/*.mpy,
//                   DIR/firmware/*.mpy), so a script imports the bytecode the device runs.
//                   Bytecode .mpy is architecture-independent: this port loads the files
//                   built for the ESP32 (they hold no native code).
//   --romfs IMAGE   hand MicroPython the ROMFS image IMAGE (tools/deploy.py builds
//                   build/device/hanport.romfs) the way the ESP32 maps its romfs flash
//                   partition: in memory outside the Python heap, mounted at /rom, with
//                   /rom and /rom/lib first on sys.path. Modules imported from it run
//                   their bytecode in place instead of copying it into the heap.
//   --stdin         read all of node's standard input before starting, and make it
//                   available as the file /stdin and as sys.stdin. Portable scripts
//                   should read /stdin when sys.implementation.name == 'micropython'.
//                   Without --stdin, sys.stdin is empty.
//   --              end of options.
//
// Set-up inside MicroPython: the repo's lib/, tools/, pc/ and host_tests/ are copied to
// /lib, /tools, /pc and /host_tests (recursively, skipping __pycache__); /lib, /tools,
// /host_tests and / (for the pc package) are on sys.path, sys.argv is
// [SCRIPT, *ARGS], and the script runs with __name__ == '__main__' and
// __file__ == its MicroPython path (/tools/x.py for a script in tools/, /lib/...
// for one in lib/, else /script/NAME.py).
//
// Steps: the WebAssembly port collects garbage only between top-level calls from
// Node (it cannot scan the stack of a running call), so gc.collect() inside one long
// script frees nothing (the collection waits until the call returns). A script
// that measures the heap can define a list MPY_STEPS of functions: after the
// script body, each runs in its own top-level call, and a top-level call that
// collects garbage runs before each, so gc.mem_alloc() at the start of a step is
// the heap in use.
//
// Output: stdout and stderr are passed through byte for byte (no line buffering,
// no added newline). Exit status: 0 on success; SystemExit(n) gives n (like
// CPython: None -> 0, a non-int argument is printed to stderr and gives 1); any other
// Python exception prints the Python traceback to stderr and gives 1; a usage error
// gives 2.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const PKG = "@micropython/micropython-webassembly-pyscript";

// ---- byte-exact output -------------------------------------------------------
// MicroPython hands over one byte at a time (linebuffer: false). Collect the bytes
// and write them with blocking writes, flushing at each newline (so a script killed
// by a timeout still shows what it printed), when the stream switches (so stdout and
// stderr stay in order relative to each other), when the buffer is full, and at the
// end.

let pendFd = 1;
let pend = Buffer.alloc(65536);
let pendLen = 0;

function writeAll(fd, buf) {
    let off = 0;
    while (off < buf.length) {
        try {
            off += fs.writeSync(fd, buf, off, buf.length - off);
        } catch (e) {
            if (e.code !== "EAGAIN") throw e;
            Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
        }
    }
}

function flush() {
    if (pendLen) {
        writeAll(pendFd, pend.subarray(0, pendLen));
        pendLen = 0;
    }
}

function emit(fd, bytes) {
    if (fd !== pendFd) {
        flush();
        pendFd = fd;
    }
    for (let i = 0; i < bytes.length; i++) {
        if (pendLen === pend.length) flush();
        pend[pendLen++] = bytes[i];
        if (bytes[i] === 10) flush();
    }
}

function errWrite(text) {
    emit(2, Buffer.from(text, "utf8"));
}

function usage(msg) {
    flush();
    writeAll(2, Buffer.from(
        (msg ? `mpy_run: ${msg}\n` : "") +
        "usage: node tools/mpy_run.mjs [--heap 1m] [--mpy DIR] [--romfs IMAGE] [--file HOSTPATH:MPPATH]... [--stdin] SCRIPT.py [ARGS...]\n"));
    process.exit(2);
}

// ---- arguments ---------------------------------------------------------------

function parseSize(s) {
    const m = /^(\d+)([kKmM]?)$/.exec(s);
    if (!m) usage(`bad --heap value: ${s}`);
    const mult = { "": 1, k: 1024, K: 1024, m: 1048576, M: 1048576 }[m[2]];
    return parseInt(m[1], 10) * mult;
}

let heap = 1048576;
let useStdin = false;
let mpyDir = null;
let romfs;
const files = [];
const argv = process.argv.slice(2);
let i = 0;
for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") { i++; break; }
    if (a === "--heap" || a.startsWith("--heap=")) {
        const v = a === "--heap" ? argv[++i] : a.slice(7);
        if (v === undefined) usage("--heap needs a value");
        heap = parseSize(v);
    } else if (a === "--file" || a.startsWith("--file=")) {
        const v = a === "--file" ? argv[++i] : a.slice(7);
        if (v === undefined) usage("--file needs HOSTPATH:MPPATH");
        const sep = v.lastIndexOf(":");
        if (sep <= 0 || sep === v.length - 1) usage(`bad --file value (want HOSTPATH:MPPATH): ${v}`);
        const mpPath = v.slice(sep + 1);
        if (!mpPath.startsWith("/")) usage(`--file target must be an absolute path: ${mpPath}`);
        files.push([v.slice(0, sep), mpPath]);
    } else if (a === "--mpy" || a.startsWith("--mpy=")) {
        const v = a === "--mpy" ? argv[++i] : a.slice(6);
        if (v === undefined) usage("--mpy needs a directory");
        mpyDir = path.resolve(v);
        if (!fs.existsSync(mpyDir) || !fs.statSync(mpyDir).isDirectory())
            usage(`--mpy: not a directory: ${v} (build it with tools/deploy.py's build())`);
    } else if (a === "--romfs" || a.startsWith("--romfs=")) {
        const v = a === "--romfs" ? argv[++i] : a.slice(8);
        if (v === undefined) usage("--romfs needs an image file");
        try {
            romfs = new Uint8Array(fs.readFileSync(v));
        } catch (e) {
            usage(`--romfs: cannot read ${v}: ${e.message}`);
        }
    } else if (a === "--stdin") {
        useStdin = true;
    } else if (a === "-h" || a === "--help") {
        usage("");
    } else if (a.startsWith("--")) {
        usage(`unknown option: ${a}`);
    } else {
        break;
    }
}
if (i >= argv.length) usage("no script given");
const script = argv[i];
const scriptArgs = argv.slice(i + 1);

let scriptSrc;
try {
    scriptSrc = fs.readFileSync(script);
} catch (e) {
    usage(`cannot read script ${script}: ${e.message}`);
}
const stdinData = useStdin ? fs.readFileSync(0) : Buffer.alloc(0);

// ---- MicroPython ---------------------------------------------------------------

let loadMicroPython;
try {
    ({ loadMicroPython } = await import(PKG));
} catch (e) {
    usage(`cannot load ${PKG} (run \`make setup\` or \`npm ci\` in ${REPO}): ${e.message}`);
}

let stdinPos = 0;
const mp = await loadMicroPython({
    heapsize: heap,
    romfs,
    linebuffer: false,
    stdout: (b) => emit(1, b),
    stderr: (b) => emit(2, b),
    stdin: () => (stdinPos < stdinData.length ? stdinData[stdinPos++] : null),
});
const FS = mp.FS;

function mkdirs(p) {
    let cur = "";
    for (const part of p.split("/").filter(Boolean)) {
        cur += "/" + part;
        try {
            FS.mkdir(cur);
        } catch (e) {
            // already exists
        }
    }
}

function copyTree(hostDir, mpDir) {
    mkdirs(mpDir);
    for (const name of fs.readdirSync(hostDir)) {
        if (name === "__pycache__") continue;
        const h = path.join(hostDir, name);
        const m = mpDir + "/" + name;
        const st = fs.statSync(h);
        if (st.isDirectory()) copyTree(h, m);
        else if (st.isFile()) FS.writeFile(m, fs.readFileSync(h));
    }
}

for (const d of ["lib", "tools", "pc", "host_tests"]) {
    const h = d === "lib" && mpyDir ? mpyDir : path.join(REPO, d);
    if (fs.existsSync(h)) copyTree(h, "/" + d);
    else mkdirs("/" + d);
}

for (const [host, mpPath] of files) {
    let data;
    try {
        data = fs.readFileSync(host);
    } catch (e) {
        usage(`cannot read --file ${host}: ${e.message}`);
    }
    mkdirs(path.posix.dirname(mpPath));
    FS.writeFile(mpPath, data);
}
if (useStdin) FS.writeFile("/stdin", stdinData);

// Where the script lives inside MicroPython (its __file__ and traceback name).
let mpScript;
const rel = path.relative(REPO, path.resolve(script)).split(path.sep).join("/");
if (/^(lib|tools|pc|host_tests)\//.test(rel)) {
    mpScript = "/" + rel;
} else {
    mpScript = "/script/" + path.basename(script);
}
mkdirs(path.posix.dirname(mpScript));
FS.writeFile(mpScript, scriptSrc);

// The bootstrap runs in MicroPython's own __main__ dict; the script gets a fresh
// dict as its globals, so the bootstrap's names never leak into it. JSON string and
// list literals are valid Python literals.
const boot = `
import sys
for _p in ('/lib', '/tools', '/host_tests', '/'):
    if _p not in sys.path:
        sys.path.append(_p)
sys.argv[:] = ${JSON.stringify([script, ...scriptArgs])}
_mpy_rc = 0
try:
    with open(${JSON.stringify(mpScript)}) as _f:
        _code = compile(_f.read(), ${JSON.stringify(mpScript)}, 'exec')
    del _f
    _mpy_g = {'__name__': '__main__', '__file__': ${JSON.stringify(mpScript)}}
    exec(_code, _mpy_g)
except SystemExit as _e:
    _a = _e.args[0] if _e.args else None
    if _a is None:
        _mpy_rc = 0
    elif isinstance(_a, int):
        _mpy_rc = _a & 0xFF
    else:
        sys.stderr.write(str(_a) + '\\n')
        _mpy_rc = 1
`;

const stepsCount = `
try:
    _mpy_steps = len(_mpy_g.get('MPY_STEPS', ())) if _mpy_rc == 0 else 0
except NameError:
    _mpy_steps = 0
`;
const step = (k) => `
try:
    _mpy_g['MPY_STEPS'][${k}]()
except SystemExit as _e:
    _mpy_rc = (_e.args[0] if _e.args and isinstance(_e.args[0], int) else 1) & 0xFF
`;

let rc = 0;
try {
    mp.runPython(boot);
    rc = Number(mp.globals.get("_mpy_rc")) | 0;
    mp.runPython(stepsCount);
    const steps = Number(mp.globals.get("_mpy_steps")) | 0;
    for (let k = 0; k < steps && rc === 0; k++) {
        mp.runPython("import gc\ngc.collect()\n");
        mp.runPython(step(k));
        rc = Number(mp.globals.get("_mpy_rc")) | 0;
    }
} catch (e) {
    if (e && e.constructor && e.constructor.name === "PythonError") {
        // Python traceback only; drop the frame of the bootstrap above.
        errWrite(String(e.message).replace(/^( {2}File "<stdin>", line \d+, in <module>\n)/m, ""));
    } else {
        errWrite(`mpy_run: internal error: ${e && e.message ? e.message : String(e)}\n`);
    }
    rc = 1;
}
flush();
process.exit(rc);
