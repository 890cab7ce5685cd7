"""The per-connection token bucket, on a clock the test moves by hand."""

from chat.ratelimit import TokenBucket


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_sustained_rate():
    clock = Clock()
    bucket = TokenBucket(rate=2, burst=3, max_strikes=5, clock=clock)
    assert [bucket.allow() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.5  # one token back at 2 per second
    assert [bucket.allow(), bucket.allow()] == [True, False]
    clock.now += 60  # refills, but never past the burst
    assert [bucket.allow() for _ in range(4)] == [True, True, True, False]


def test_strikes_count_refusals_in_a_row_and_reset_on_a_good_frame():
    clock = Clock()
    bucket = TokenBucket(rate=1, burst=1, max_strikes=2, clock=clock)
    bucket.allow()
    for _ in range(2):
        assert not bucket.allow()
    assert not bucket.abused
    assert not bucket.allow()
    assert bucket.abused
    clock.now += 1
    assert bucket.allow() and bucket.strikes == 0 and not bucket.abused
