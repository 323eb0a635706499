"""`mnist_cnn evaluate`: test accuracy and confusion matrix of a trained model (any accepted one)."""

from __future__ import annotations

from mnist_cnn.app.common import add_model_options, check_data, check_model


def add(sub):
    p = sub.add_parser("evaluate", help="accuracy and confusion matrix of a trained model")
    add_model_options(p)
    return p


def check(args):
    check_model(args, False)
    check_data(args)


def run(args):
    from mnist_cnn.data import load_dataset, to_input
    from mnist_cnn.data.registry import get_dataset
    from mnist_cnn.evaluate import evaluate, format_confusion, top_confusions
    from mnist_cnn.model import load_trained

    info = get_dataset(args.dataset)
    model = load_trained(args.model, dataset=info.name)
    _, (x_test, y_test) = load_dataset(info.name, args.data or None)
    r = evaluate(model, to_input(x_test), y_test)
    print(f"{args.model}: test accuracy {r['accuracy']:.4%} ({int(r['confusion_matrix'].trace())}"
          f"/{len(y_test)}), loss {r['loss']:.4f}")
    print(format_confusion(r["confusion_matrix"]))
    if info.name != "mnist":
        print("classes: " + ", ".join(f"{i} {name}" for i, name in enumerate(info.class_names)))
    print("most confused (true -> predicted: count): " + ", ".join(
        f"{info.class_name(t)}->{info.class_name(p)}: {n}"
        for t, p, n in top_confusions(r["confusion_matrix"])))
