"""Count calls to a module function (to prove which code path ran)."""


class Counter:
    def __init__(self, monkeypatch, module, name):
        self.calls = 0
        original = getattr(module, name)

        def counted(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)
        monkeypatch.setattr(module, name, counted)


class Either:
    """Calls of any of several counters (one operation that either engine may run)."""

    def __init__(self, *counters):
        self.counters = counters

    @property
    def calls(self):
        return sum(c.calls for c in self.counters)
