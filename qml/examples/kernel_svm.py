"""Quantum-kernel SVM (`qml.kernels.kernel_matrix`) against an RBF SVM, on iris or breast cancer.

Features are standardised on the training set and mapped to angles; the
fidelity kernel ``|<phi(x)|phi(x')>|^2`` of an IQP embedding (one qubit per
feature; breast cancer is first reduced to ``--qubits`` principal components)
is given to scikit-learn's ``SVC(kernel="precomputed")``. The baseline is
``SVC(kernel="rbf")`` on the same standardised features.

    python -m qml.examples.kernel_svm [--fast] [--dataset iris|breast_cancer] [--out DIR]
"""

from __future__ import annotations

import numpy as np

import qml

from . import _common


def embedding(c, x):
    qml.templates.iqp_embedding(c, x)


def load(name, n_qubits, seed):
    """Standardised train/test data: ``(Xtr, Xte, ytr, yte)``, features scaled to about ``[-1, 1]``."""
    from sklearn import datasets
    from sklearn.decomposition import PCA
    data = datasets.load_iris() if name == "iris" else datasets.load_breast_cancer()
    Xtr, Xte, ytr, yte = _common.split(data.data, data.target, 0.3, seed)
    mean, std = Xtr.mean(0), Xtr.std(0)
    Xtr, Xte = (Xtr - mean) / std, (Xte - mean) / std
    if Xtr.shape[1] > n_qubits:
        pca = PCA(n_qubits, random_state=seed).fit(Xtr)
        Xtr, Xte = pca.transform(Xtr), pca.transform(Xte)
        s = Xtr.std(0)
        Xtr, Xte = Xtr / s, Xte / s
    return (Xtr / 2).astype(np.float32), (Xte / 2).astype(np.float32), ytr, yte


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=("iris", "breast_cancer"), default="iris")
    p.add_argument("--qubits", type=int, default=6, help="PCA components / qubits for breast_cancer")
    args = p.parse_args(argv)
    from sklearn.svm import SVC
    Xtr, Xte, ytr, yte = load(args.dataset, args.qubits, args.seed)
    if args.fast:
        Xtr, ytr = Xtr[:80], ytr[:80]
    with _common.progress(2, args, "kernels") as bar:
        K_train = np.asarray(qml.kernels.kernel_matrix(embedding, Xtr))
        bar.update()
        K_test = np.asarray(qml.kernels.kernel_matrix(embedding, Xte, Xtr))
        bar.update()
    quantum = SVC(kernel="precomputed").fit(K_train, ytr)
    q_acc = _common.accuracy(quantum.predict(K_test), yte)
    rbf_acc = _common.accuracy(SVC(kernel="rbf").fit(Xtr, ytr).predict(Xte), yte)

    plt = _common.pyplot()
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 4))
    order = np.argsort(ytr, kind="stable")
    im = ax0.imshow(K_train[np.ix_(order, order)], cmap="viridis", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax0)
    ax0.set(title=f"IQP fidelity kernel ({args.dataset}, sorted by class)")
    ax1.bar(["quantum kernel", "RBF"], [q_acc, rbf_acc], color=["tab:purple", "tab:gray"])
    ax1.set(title=f"test accuracy ({len(yte)} samples)", ylim=(0, 1))
    path = _common.save(fig, args, "kernel_svm")
    return _common.report("kernel_svm", {"quantum_kernel_test_accuracy": q_acc, "rbf_test_accuracy": rbf_acc,
                                         "n_qubits": int(Xtr.shape[1]), "n_train": int(len(ytr)),
                                         "plot": str(path)})


if __name__ == "__main__":
    main()
