import logging

from swapline.pipeline.rate import AdaptiveRate, AdaptiveRateSettings
from swapline.pipeline.thermal import ThermalGovernor, ThermalSettings


def test_adaptive_rate_slows_down_without_a_face_and_recovers_at_once():
    rate = AdaptiveRate(AdaptiveRateSettings(idle_after_s=1.0, idle_fps=15))
    t, processed = 0.0, 0
    for _ in range(90):  # 3 s at 30 fps, never a face
        if rate.should_process(t):
            processed += 1
            rate.observe(t, found_face=False)
        t += 1 / 30
    # 1 s at full rate (30) then 2 s at 15 fps (30)
    assert 55 <= processed <= 65
    assert rate.idle(t)
    rate.observe(t, found_face=True)  # a face appears
    assert not rate.idle(t) and rate.should_process(t + 1 / 30)


def test_adaptive_rate_can_be_disabled():
    rate = AdaptiveRate(AdaptiveRateSettings(enabled=False))
    assert all(rate.should_process(t / 30) for t in range(300))


def test_thermal_governor_switches_with_hysteresis():
    readings = iter([50, 66, 63, 61, 59, 70])
    now = [0.0]
    governor = ThermalGovernor(
        ThermalSettings(hot_c=65, cool_c=60, check_every_s=1.0), lambda: next(readings), lambda: now[0]
    )
    modes = []
    for _ in range(6):
        modes.append(governor.update())
        assert governor.update() == modes[-1]  # no new reading before check_every_s
        now[0] += 1.0
    assert modes == [False, True, True, True, False, True]
    assert [mode for _, mode in governor.switches] == ["light", "normal", "light"]


def test_missing_sensor_is_reported_once(caplog):
    calls = []
    governor = ThermalGovernor(ThermalSettings(check_every_s=0.0), lambda: calls.append(1))
    with caplog.at_level(logging.WARNING, logger="swapline.thermal"):
        for _ in range(5):
            assert governor.update() is False
    assert len(calls) == 1
    assert sum("no temperature sensor" in r.message for r in caplog.records) == 1
