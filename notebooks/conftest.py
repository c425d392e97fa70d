"""nbval settings for the course notebooks.

nbval waits only 5 s (hard-coded) for a kernel's output messages after a cell's reply arrives. On a
loaded 2-core CI machine the kernel's IOPub thread can lag longer than that behind a long training
cell, and nbval then fails a cell that succeeded ("Timeout of 5 seconds exceeded waiting for
output"). This raises that wait; it changes no comparison of outputs.
"""

OUTPUT_TIMEOUT_S = 120


def pytest_collection_modifyitems(config, items):
    for item in items:
        if type(item).__name__ == "IPyNbCell":
            item.output_timeout = OUTPUT_TIMEOUT_S
