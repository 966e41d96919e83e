"""The modes, each a thin loop around a SwapSession: still images, video files, live feeds."""
