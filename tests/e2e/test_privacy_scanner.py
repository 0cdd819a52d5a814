"""The privacy scanner can fail: planted identities are found in every form, anywhere."""

from __future__ import annotations

import random
from pathlib import Path

from tests.e2e.privacy_scan import identity_needles, scan_paths, scan_texts
from tpledger.ledger.patient import make_test_birth_date, make_test_nir


def test_scanner_finds_planted_identities(tmp_path: Path) -> None:
    rng = random.Random(7)
    nir, bd = make_test_nir(rng), make_test_birth_date(rng)
    y, m, d = bd.split("-")
    needles = identity_needles([(nir, bd)])
    (tmp_path / "deep" / "er").mkdir(parents=True)
    planted = {
        "plain.log": f"patient {nir} born {bd}\n".encode(),
        "deep/er/blob.bin": b"\x00" * 70000 + nir.encode() + b"\xff" * 10,
        "compact.txt": f"{y}{m}{d}".encode(),
        "french.txt": f"{d}/{m}/{y}".encode(),
        "grouped.txt": f"{nir[0]} {nir[1:3]} {nir[3:5]} {nir[5:7]} {nir[7:10]} "
                       f"{nir[10:13]} {nir[13:]}".encode(),
        "utf16.txt": nir.encode("utf-16-le"),
        "clean.txt": b"nothing personal here 2024-01-01",
        "empty": b"",
    }
    for name, data in planted.items():
        (tmp_path / name).write_bytes(data)
    hits = scan_paths([tmp_path], needles)
    files = {Path(p).relative_to(tmp_path).as_posix() for p, _ in hits}
    assert files == set(planted) - {"clean.txt", "empty"}
    assert all(nir not in kind and bd not in kind for _, kind in hits)  # kinds, not values
    assert scan_texts([("metrics", f'x{{id="{nir}"}} 1'.encode())], needles) == [
        ("metrics", "nir"), ("metrics", "nir-without-key")]
    clean = tmp_path / "clean-dir"
    clean.mkdir()
    (clean / "c.txt").write_bytes(planted["clean.txt"])
    assert scan_paths([clean], needles) == []
