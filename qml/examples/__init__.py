"""Runnable examples: ``python -m qml.examples.NAME [--fast] [--out DIR]``.

NAME is one of ``xor``, ``moons``, ``digits``, ``text``, ``transformer``, ``kernel_svm``,
``vqe_h2``, ``qaoa_maxcut``, ``portfolio``, ``noisy_classifier``. Each prints its final metrics, saves a PNG plot to
``--out`` (default ``./out``) and has a ``main(argv) -> dict`` of those metrics.
They need the ``examples`` extra (scikit-learn, matplotlib, tqdm).
"""

EXAMPLES = ("xor", "moons", "digits", "text", "transformer", "kernel_svm", "vqe_h2", "qaoa_maxcut", "portfolio",
            "noisy_classifier")
