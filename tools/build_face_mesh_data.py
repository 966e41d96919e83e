"""Write swapline/faces/data/face_mesh.json: FaceMesh triangles and named landmark rings.

    python tools/build_face_mesh_data.py --obj canonical_face_model.obj

The triangles come from MediaPipe's canonical_face_model.obj (mediapipe/modules/face_geometry/
data/, Apache-2.0; the wheel does not ship it, so pass a copy from the MediaPipe sources). The
named regions (face oval, lips, eyes, brows) come from the face_mesh_connections module of the
mediapipe==0.10.21 wheel. The script checks the mesh is a manifold disc whose border is the
face oval before writing anything.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "swapline" / "faces" / "data" / "face_mesh.json"


def read_obj_triangles(path: Path) -> list[list[int]]:
    triangles = []
    for line in path.read_text().splitlines():
        if line.startswith("f "):
            triangles.append([int(part.split("/")[0]) - 1 for part in line.split()[1:4]])
    return triangles


def ordered_ring(edges) -> list[int]:
    """Vertices of a closed loop of undirected edges, in walking order."""
    neighbours: dict[int, list[int]] = {}
    for a, b in edges:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    start = min(neighbours)
    ring, previous, current = [start], None, start
    while True:
        following = [n for n in neighbours[current] if n != previous]
        nxt = following[0]
        if nxt == start:
            return ring
        ring.append(nxt)
        previous, current = current, nxt


def split_components(edges) -> list[list[tuple[int, int]]]:
    groups: list[tuple[set[int], list]] = []
    for edge in edges:
        hits = [g for g in groups if edge[0] in g[0] or edge[1] in g[0]]
        merged = (set(edge), [edge])
        for g in hits:
            merged[0].update(g[0])
            merged[1].extend(g[1])
            groups.remove(g)
        groups.append(merged)
    return [g[1] for g in groups]


def mirror_map(triangles: list[list[int]]) -> list[int]:
    """Left/right partner of every landmark.

    canonical_face_model.obj lists its faces in mirror pairs: face 2k+1 is face 2k reflected,
    with its last two corners swapped (the winding flips). Votes over all pairs give the map;
    it must be an involution that takes every triangle onto a triangle.
    """
    votes: dict[int, Counter] = {}
    for first, second in zip(triangles[0::2], triangles[1::2], strict=False):
        for a, b in zip(first, (second[0], second[2], second[1]), strict=True):
            votes.setdefault(a, Counter())[b] += 1
            votes.setdefault(b, Counter())[a] += 1
    mirror = [votes[i].most_common(1)[0][0] for i in range(468)]
    assert all(mirror[mirror[i]] == i for i in range(468)), "mirror map is not an involution"
    faces = {tuple(sorted(t)) for t in triangles}
    assert all(tuple(sorted(mirror[v] for v in t)) in faces for t in faces), "mirror does not map faces to faces"
    return mirror


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--obj", type=Path, required=True)
    args = parser.parse_args()
    from mediapipe.python.solutions import face_mesh_connections as c

    triangles = read_obj_triangles(args.obj)
    edge_use = Counter()
    for a, b, d in triangles:
        for e in ((a, b), (b, d), (a, d)):
            edge_use[tuple(sorted(e))] += 1
    border = {v for e, n in edge_use.items() if n == 1 for v in e}
    oval = ordered_ring(c.FACEMESH_FACE_OVAL)
    assert len(triangles) == 898 and max(edge_use.values()) == 2, "not a manifold mesh"
    assert border == set(oval), "mesh border is not the face oval"
    lips = [ordered_ring(g) for g in split_components(c.FACEMESH_LIPS)]
    data = {
        "about": "MediaPipe Face Mesh topology (468 landmarks). Triangles from MediaPipe's "
        "canonical_face_model.obj (0-based); regions from mediapipe 0.10.21's face_mesh_connections. "
        "Apache-2.0, see swapline/models/LICENSE-mediapipe.txt.",
        "triangles": triangles,
        "face_oval": oval,
        "lips_outer": next(r for r in lips if 13 not in r),
        "lips_inner": next(r for r in lips if 13 in r),
        "left_eye": ordered_ring(c.FACEMESH_LEFT_EYE),
        "right_eye": ordered_ring(c.FACEMESH_RIGHT_EYE),
        "left_eyebrow": sorted({v for e in c.FACEMESH_LEFT_EYEBROW for v in e}),
        "right_eyebrow": sorted({v for e in c.FACEMESH_RIGHT_EYEBROW for v in e}),
        "nose": sorted({v for e in c.FACEMESH_NOSE for v in e}),
        "mirror": mirror_map(triangles),
    }
    OUT.write_text(json.dumps(data, separators=(",", ":")))
    print(f"wrote {OUT} ({len(triangles)} triangles, oval of {len(oval)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
