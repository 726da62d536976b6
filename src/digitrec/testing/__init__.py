"""What the tests (tests/) and the benchmarks (benchmarks/) both use, importable from an installed digitrec:

    glyphs       letters, symbols and digits as hand-drawn strokes (what documents draws)
    handwriting  multi-digit numbers drawn with one pen, and the same on a photographed sheet of paper
    documents    digits, numbers and non-digits as they come from paper (boxes, ruling, scans, photos)
    hostile      small files that used to cost a server far more than their size
    servers      a real uvicorn / `digitrec serve` in a child process on a free loopback port
    cli          `python -m digitrec ...` in a child process, output captured
    load         a concurrent /api/predict client that also samples the server's memory

Like numpy.testing: nothing in the product imports it (an import-linter contract in pyproject.toml keeps it
that way), and each module imports only what it uses, so `import digitrec.testing` loads nothing heavy.
`servers` and `load` need httpx (the dev extra).
"""
