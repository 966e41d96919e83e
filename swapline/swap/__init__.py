"""Swappers: the built-in landmark-mesh swapper (neural generators come from the model registry)."""

from swapline.swap.mesh_swapper import MeshSwapper, MeshSwapSettings, RegisteredSource

__all__ = ["MeshSwapSettings", "MeshSwapper", "RegisteredSource"]
