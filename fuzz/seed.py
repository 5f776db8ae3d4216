#!/usr/bin/env python3
"""Build the fuzzers' starting inputs (fuzz/seeds/<target>/) from the
repository's own files: its captures, certificates, configurations and suites,
and, when ../shared is present, the public captures and x509-limbo cases there.

The seeds are not committed; `fuzz/run.sh` minimises what the fuzzers found
from them into fuzz/corpus/<target>/, which is. Python's standard library
only: pcap and pcapng are read by hand here because this is a seed script,
not product code (the product reads them with pcap-file)."""

import base64
import glob
import gzip
import hashlib
import json
import os
import re
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")
SHARED = os.path.join(os.path.dirname(ROOT), "shared")


def shared_vendorable_captures():
    """The shared captures whose licence the repository carries (zeek,
    PcapPlusPlus: tests/data/captures/LICENSES); the corpus is committed, so
    suricata-verify's are left out."""
    manifest = os.path.join(SHARED, "captures/MANIFEST.tsv")
    if not os.path.exists(manifest):
        return []
    keep = []
    with open(manifest) as f:
        for line in f.read().splitlines()[1:]:
            cols = line.split("\t")
            if len(cols) > 3 and cols[3] != "OISF/suricata-verify":
                keep.append(os.path.join(SHARED, "captures", cols[0]))
    return keep
MAX = 64 * 1024  # the fuzzers' -max_len for captures


def put(target, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def frames(raw):
    """(linktype, frame bytes) for every packet of a pcap or pcapng file."""
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    magic = raw[:4]
    out = []
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    elif magic == b"\x0a\x0d\x0d\x0a":
        return pcapng_frames(raw)
    else:
        return out
    linktype = struct.unpack(e + "I", raw[20:24])[0] & 0xFFFF
    at = 24
    while at + 16 <= len(raw):
        incl = struct.unpack(e + "I", raw[at + 8 : at + 12])[0]
        out.append((linktype, raw[at + 16 : at + 16 + incl]))
        at += 16 + incl
    return out


def pcapng_frames(raw):
    out, links, at, e = [], [], 0, "<"
    while at + 12 <= len(raw):
        btype = struct.unpack(e + "I", raw[at : at + 4])[0]
        if btype == 0x0A0D0D0A:
            e = "<" if raw[at + 8 : at + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            links = []
        blen = struct.unpack(e + "I", raw[at + 4 : at + 8])[0]
        body = raw[at + 8 : at + blen - 4]
        if btype == 1:
            links.append(struct.unpack(e + "H", body[:2])[0])
        elif btype == 6:
            iface, _, _, cap = struct.unpack(e + "IIII", body[:16])
            out.append((links[iface] if iface < len(links) else 1, body[20 : 20 + cap]))
        if blen < 12:
            break
        at += blen
    return out


def tcp_of(linktype, frame):
    """((src, dst), sport, dport, proto, payload) for Ethernet/SLL/raw IPv4 frames."""
    ip = None
    if linktype == 1 and len(frame) > 14:
        et, at = struct.unpack(">H", frame[12:14])[0], 14
        while et in (0x8100, 0x88A8) and len(frame) > at + 4:
            et, at = struct.unpack(">H", frame[at + 2 : at + 4])[0], at + 4
        if et == 0x0800:
            ip = frame[at:]
    elif linktype == 113 and len(frame) > 16:
        ip = frame[16:]
    elif linktype in (101, 228, 12, 14):
        ip = frame
    elif linktype in (0, 108) and len(frame) > 4:
        ip = frame[4:]
    if not ip or len(ip) < 20 or ip[0] >> 4 != 4:
        return None
    ihl = (ip[0] & 15) * 4
    total = struct.unpack(">H", ip[2:4])[0] or len(ip)
    proto = ip[9]
    l4 = ip[ihl:total]
    if proto == 6 and len(l4) >= 20:
        sport, dport, seq = struct.unpack(">HHI", l4[:8])
        off = (l4[12] >> 4) * 4
        return ((ip[12:16], ip[16:20]), sport, dport, 6, seq, l4[off:])
    if proto == 17 and len(l4) >= 8:
        sport, dport = struct.unpack(">HH", l4[:4])
        return ((ip[12:16], ip[16:20]), sport, dport, 17, 0, l4[8:])
    return None


def capture_seeds(path):
    raw = open(path, "rb").read()
    if len(raw) <= MAX:
        put("capture", raw)
    streams = {}
    for linktype, frame in frames(raw)[:4000]:
        if len(frame) <= 4096:
            put("decap", bytes([LINKTYPES.index(linktype) if linktype in LINKTYPES else 1]) + frame)
        t = tcp_of(linktype, frame)
        if not t:
            continue
        addrs, sport, dport, proto, seq, payload = t
        if proto == 17 and 53 in (sport, dport) and payload:
            put("dns", payload)
        if proto == 6 and payload:
            key = (addrs, sport, dport)
            s = streams.setdefault(key, {})
            s.setdefault(seq, payload)
    for (addrs, sport, dport), segs in list(streams.items())[:40]:
        data = b"".join(segs[k] for k in sorted(segs))[:MAX]
        if 53 in (sport, dport):
            put("dns", data[2:])
            continue
        put("tls_stream", bytes([255]) + data)
        put("tls_stream", bytes([7]) + data[:8192])
        if 5222 in (sport, dport) or b"<stream" in data[:4096]:
            put("xmpp", data[: data.find(b"\x16\x03") if b"\x16\x03" in data else 4096])
        # TCP segments, in order and then shuffled with a duplicate, for reassembly.
        items = sorted(segs.items())[:12]
        def enc(order):
            return b"".join(struct.pack(">IBB", s, 0, min(len(p), 255)) + p[:255] for s, p in order)
        put("tcp", enc(items))
        put("tcp", enc(items[::-1] + items[:1]))


LINKTYPES = [0, 1, 9, 101, 108, 113, 228, 229, 276, 12, 14]


def pem_blocks(text):
    return [base64.b64decode("".join(b.split())) for b in re.findall(
        r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", text, re.S)]


def chain_seed(ders):
    put("chain", b"".join(struct.pack(">H", len(d)) + d for d in ders[:8] if len(d) < 65536))


def main():
    for path in sorted(glob.glob(os.path.join(ROOT, "tests/data/captures/*.pcap*"))
                       + glob.glob(os.path.join(ROOT, "captures/*/*.pcapng"))
                       + shared_vendorable_captures()):
        capture_seeds(path)
    pems = glob.glob(os.path.join(ROOT, "captures/samples/*.pem")) + glob.glob(
        os.path.join(ROOT, "captures/demo/*.pem"))
    for path in pems:
        text = open(path).read()
        put("certificate", text.encode())
        ders = pem_blocks(text)
        for d in ders:
            put("certificate", d)
        chain_seed(ders)
    limbo = [os.path.join(ROOT, "tests/data/limbo/limbo-server-dns.json")]
    limbo += glob.glob(os.path.join(SHARED, "pki/limbo/*.json"))
    for path in limbo:
        try:
            cases = json.load(open(path)).get("testcases", [])
        except (ValueError, AttributeError):
            continue
        for case in cases[:400]:
            leaf = pem_blocks(case.get("peer_certificate", ""))
            inter = [d for p in case.get("untrusted_intermediates", []) for d in pem_blocks(p)]
            roots = [d for p in case.get("trusted_certs", []) for d in pem_blocks(p)]
            for d in leaf + inter:
                put("certificate", d)
            chain_seed(roots[:1] + leaf + inter)
    for path in glob.glob(os.path.join(ROOT, "configs/*.toml")):
        data = open(path, "rb").read()
        put("regress_suite" if "regress" in path else "proxy_config", data)
    put("keylog", b"# SSL/TLS secrets log file\n"
        b"CLIENT_HANDSHAKE_TRAFFIC_SECRET " + b"ab" * 32 + b" " + b"cd" * 32 + b"\n"
        b"SERVER_HANDSHAKE_TRAFFIC_SECRET " + b"ab" * 32 + b" " + b"ef" * 48 + b"\n"
        b"CLIENT_RANDOM " + b"01" * 32 + b" " + b"02" * 48 + b"\n")
    put("xmpp", b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
        b"xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>")
    put("xmpp", b"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
        b"from='example.com' id='1' version='1.0'><stream:features><starttls "
        b"xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"
        b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    revocation_seeds()
    for t in ("capture", "decap", "tcp", "tls_stream", "certificate", "chain", "xmpp", "dns",
              "keylog", "proxy_config", "regress_suite", "revocation"):
        d = os.path.join(SEEDS, t)
        print(t, len(os.listdir(d)) if os.path.isdir(d) else 0, file=sys.stderr)


def revocation_seeds():
    """A CA, a good and a revoked certificate, the CA's CRL (DER and PEM) and
    OCSP responses for both, made with the openssl CLI; each seed is the issuer
    and the certificate (2-byte lengths) followed by one answer."""
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        def run(*args):
            subprocess.run(["openssl", *args], cwd=tmp, check=True, capture_output=True)
        def der(name):
            subprocess.run(["openssl", "x509", "-in", name, "-outform", "DER", "-out", name + ".der"],
                           cwd=tmp, check=True, capture_output=True)
            return open(os.path.join(tmp, name + ".der"), "rb").read()
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=Fuzz Revocation CA", "-days", "30",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign,cRLSign")
        for serial in ("1001", "1002"):
            run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", serial + ".key", "-out", serial + ".csr", "-subj", "/CN=fuzz.example.com")
            run("x509", "-req", "-in", serial + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-set_serial", "0x" + serial, "-days", "20", "-out", serial + ".pem")
        with open(os.path.join(tmp, "index.txt"), "w") as f:
            f.write("V\t491231000000Z\t\t1001\tunknown\t/CN=fuzz.example.com\n")
            f.write("R\t491231000000Z\t200101000000Z,keyCompromise\t1002\tunknown\t/CN=fuzz.example.com\n")
        with open(os.path.join(tmp, "crlnumber"), "w") as f:
            f.write("01\n")
        with open(os.path.join(tmp, "ca.cnf"), "w") as f:
            f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\n"
                    "default_md = sha256\ndefault_crl_days = 30\n")
        run("ca", "-config", "ca.cnf", "-gencrl", "-keyfile", "ca.key", "-cert", "ca.pem", "-out", "crl.pem")
        run("crl", "-in", "crl.pem", "-outform", "DER", "-out", "crl.der")
        answers = [open(os.path.join(tmp, n), "rb").read() for n in ("crl.der", "crl.pem")]
        for serial in ("1001", "1002"):
            run("ocsp", "-no_nonce", "-issuer", "ca.pem", "-cert", serial + ".pem", "-reqout", serial + ".req")
            run("ocsp", "-index", "index.txt", "-CA", "ca.pem", "-rsigner", "ca.pem", "-rkey", "ca.key",
                "-ndays", "30", "-reqin", serial + ".req", "-respout", serial + ".resp")
        ca = der("ca.pem")
        for serial in ("1001", "1002"):
            cert = der(serial + ".pem")
            head = struct.pack(">H", len(ca)) + ca + struct.pack(">H", len(cert)) + cert
            for answer in answers + [open(os.path.join(tmp, serial + ".resp"), "rb").read()]:
                put("revocation", head + answer)


if __name__ == "__main__":
    main()
