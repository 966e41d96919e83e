from collections import Counter

from swapline.faces.topology import face_mesh


def test_mesh_is_a_consistently_wound_disc_bounded_by_the_face_oval():
    mesh = face_mesh()
    assert mesh.triangles.shape == (898, 3)
    assert set(mesh.triangles.ravel().tolist()) == set(range(468))
    undirected, directed = Counter(), Counter()
    for a, b, c in mesh.triangles.tolist():
        for e in ((a, b), (b, c), (c, a)):
            undirected[tuple(sorted(e))] += 1
            directed[e] += 1
    assert max(undirected.values()) == 2
    assert max(directed.values()) == 1  # same winding everywhere
    border = {v for e, n in undirected.items() if n == 1 for v in e}
    assert border == set(mesh.face_oval.tolist())
    assert len(undirected) - 468 - 898 == -1  # Euler: a disc


def test_lip_rings():
    mesh = face_mesh()
    assert 13 in mesh.lips_inner and 14 in mesh.lips_inner
    assert 0 in mesh.lips_outer and 17 in mesh.lips_outer
