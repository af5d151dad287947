"""``python -m benchmarks.registration``: the shifted-pair co-registration benchmark (:mod:`.shifted`)."""

from benchmarks.registration.shifted import main

if __name__ == "__main__":
    raise SystemExit(main())
