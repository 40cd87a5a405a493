"""Small workout texts for tests."""

GOOD = """\
name: Test class
programs:
  strength:
    frequency_hz: 85
    pulse_width_us: 350
    impulse_s: 4
    pause_s: 4
    ramp_up_s: 0.5
    ramp_down_s: 0.3
phases:
  - kind: warmup
    duration: 6m
    cues: [jumping jacks]
  - kind: suit
    exercises:
      - name: Squat
        duration: 10m
        program: strength
        channels: {quads: 1.0, glutes: 1.0, abs: 0.6}
      - name: Row
        duration: 10m
        program: strength
        channels: {upper_back: 1.0, chest_left: 0.5}
  - kind: stretch
    duration: 5m
"""
