"""Builds the classic-ML fixtures: scikit-learn, XGBoost and LightGBM models converted with
skl2onnx / onnxmltools, with test rows and onnxruntime's outputs as the reference.

Run from this directory in a venv with scikit-learn, skl2onnx, onnxmltools, xgboost, lightgbm,
onnx and onnxruntime (versions are recorded in ml/VERSIONS.txt):
    python make_ml_models.py
Writes ml/<name>/model.onnx and ml/<name>/test_data_set_0/: input_K.pb (input_K.json for a map
input: one {"key": value} object), and per output either
output_K.pb (a tensor) or output_K.json (a sequence of maps, as ZipMap gives: a list of
{"label": probability} objects, keys as strings).
"""
import json
import os
import shutil
import sys
import warnings

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from skl2onnx import convert_sklearn, to_onnx
from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType, DictionaryType
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris, make_classification, make_regression
from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor, RandomForestClassifier,
                              RandomForestRegressor, ExtraTreesClassifier)
from sklearn.feature_extraction import DictVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import Binarizer, MaxAbsScaler, MinMaxScaler, Normalizer, OneHotEncoder, StandardScaler
from sklearn.svm import SVC, SVR, LinearSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

warnings.simplefilter("ignore")
rng = np.random.default_rng(20261127)
OUT = "ml"
OPSET = {"": 17, "ai.onnx.ml": 3}


def save(name, model, inputs, note):
    directory = os.path.join(OUT, name)
    data = os.path.join(directory, "test_data_set_0")
    os.makedirs(data, exist_ok=True)
    onnx.save(model, os.path.join(directory, "model.onnx"))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    outputs = session.run(None, inputs)
    for k, (key, value) in enumerate(inputs.items()):
        if isinstance(value, dict):
            with open(os.path.join(data, f"input_{k}.json"), "w") as f:
                json.dump(value, f)
        else:
            onnx.save_tensor(numpy_helper.from_array(value, key), os.path.join(data, f"input_{k}.pb"))
    for k, (info, value) in enumerate(zip(session.get_outputs(), outputs)):
        if isinstance(value, list):
            with open(os.path.join(data, f"output_{k}.json"), "w") as f:
                json.dump([{str(key): float(p) for key, p in row.items()} for row in value], f)
        else:
            onnx.save_tensor(numpy_helper.from_array(np.asarray(value), info.name), os.path.join(data, f"output_{k}.pb"))
    ops = sorted({(n.domain or "ai.onnx") + "." + n.op_type for n in model.graph.node})
    print(f"{name}: {note}; ops {', '.join(ops)}")
    return f"{name}\t{note}\t{' '.join(ops)}"


def sk(model, x, name=None, zipmap=True, extra=None):
    options = None if zipmap else {id(model): {"zipmap": False}}
    if extra:
        options = {**(options or {}), **extra}
    return to_onnx(model, x[:1], target_opset=OPSET, options=options)


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    rows = []
    x_iris, y_iris = load_iris(return_X_y=True)
    x_iris = x_iris.astype(np.float32)
    test_iris = x_iris[::3]
    x_cls, y_cls = make_classification(n_samples=600, n_features=12, n_informative=8, n_classes=3, random_state=1)
    x_cls = x_cls.astype(np.float32)
    test_cls = (x_cls[::10] + rng.normal(0, 0.3, x_cls[::10].shape)).astype(np.float32)
    x_bin, y_bin = make_classification(n_samples=500, n_features=10, n_informative=6, random_state=2)
    x_bin = x_bin.astype(np.float32)
    test_bin = x_bin[::10]
    x_reg, y_reg = make_regression(n_samples=500, n_features=8, noise=5, random_state=3)
    x_reg = x_reg.astype(np.float32)
    test_reg = x_reg[::10]

    def add(name, estimator, x, y, test, note, zipmap=True, extra=None):
        estimator.fit(x, y)
        rows.append(save(name, sk(estimator, x, zipmap=zipmap, extra=extra), {"X": test}, note))

    add("linear_regression", LinearRegression(), x_reg, y_reg, test_reg, "LinearRegression")
    add("ridge_multi_target", Ridge(), x_reg, np.stack([y_reg, -2 * y_reg + 1], 1), test_reg, "Ridge, two targets")
    add("logistic_binary", LogisticRegression(max_iter=500), x_bin, y_bin, test_bin, "LogisticRegression, two classes, ZipMap")
    add("logistic_multiclass", LogisticRegression(max_iter=500), x_iris, y_iris, test_iris, "LogisticRegression, three classes", zipmap=False)
    add("scaler_logistic_pipeline", Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))]),
        x_cls, y_cls, test_cls, "StandardScaler + LogisticRegression, ZipMap")
    add("minmax_maxabs_normalizer_pipeline",
        Pipeline([("mm", MinMaxScaler()), ("ma", MaxAbsScaler()), ("n", Normalizer(norm="l2")), ("clf", LogisticRegression(max_iter=500))]),
        x_cls, y_cls, test_cls, "MinMaxScaler + MaxAbsScaler + Normalizer(l2) + LogisticRegression", zipmap=False)
    add("random_forest_classifier", RandomForestClassifier(n_estimators=40, max_depth=8, random_state=4), x_cls, y_cls, test_cls,
        "RandomForestClassifier, 40 trees, 3 classes", zipmap=False)
    add("random_forest_binary", RandomForestClassifier(n_estimators=30, max_depth=6, random_state=4), x_bin, y_bin, test_bin,
        "RandomForestClassifier, 30 trees, 2 classes, ZipMap")
    add("random_forest_regressor", RandomForestRegressor(n_estimators=30, max_depth=8, random_state=5), x_reg, y_reg, test_reg,
        "RandomForestRegressor, 30 trees")
    add("extra_trees_classifier", ExtraTreesClassifier(n_estimators=20, max_depth=6, random_state=4), x_iris, y_iris, test_iris,
        "ExtraTreesClassifier, 20 trees", zipmap=False)
    add("gradient_boosting_binary", GradientBoostingClassifier(n_estimators=60, max_depth=3, random_state=6), x_bin, y_bin, test_bin,
        "GradientBoostingClassifier, 2 classes", zipmap=False)
    add("gradient_boosting_500_trees", GradientBoostingClassifier(n_estimators=170, max_depth=3, random_state=6), x_cls, y_cls, test_cls,
        "GradientBoostingClassifier, 3 classes x 170 = 510 trees", zipmap=False)
    add("gradient_boosting_regressor", GradientBoostingRegressor(n_estimators=80, max_depth=4, random_state=7), x_reg, y_reg, test_reg,
        "GradientBoostingRegressor, 80 trees")
    add("decision_tree_regressor", DecisionTreeRegressor(max_depth=10, random_state=8), x_reg, y_reg, test_reg, "DecisionTreeRegressor, depth 10")
    labels = np.array(["setosa", "versicolor", "virginica"])[y_iris]
    add("decision_tree_string_labels", DecisionTreeClassifier(max_depth=5, random_state=8), x_iris, labels, test_iris,
        "DecisionTreeClassifier with string labels, ZipMap")
    add("svc_probabilities", SVC(probability=True, random_state=9), x_cls, y_cls, test_cls, "SVC rbf, probability=True", zipmap=False)
    add("svc_binary_decision", SVC(kernel="poly", degree=3, random_state=9), x_bin, y_bin, test_bin, "SVC poly, 2 classes, no probabilities", zipmap=False)
    add("svc_linear_multiclass", SVC(kernel="linear", random_state=9), x_iris, y_iris, test_iris, "SVC linear, 3 classes, no probabilities", zipmap=False)
    add("svc_sigmoid_binary_proba", SVC(kernel="sigmoid", probability=True, gamma=0.01, random_state=9), x_bin, y_bin, test_bin,
        "SVC sigmoid, 2 classes, probability=True", zipmap=False)
    add("linear_svc", LinearSVC(random_state=9), x_cls, y_cls, test_cls, "LinearSVC, 3 classes")
    add("svr_rbf", SVR(), x_reg, y_reg / 100, test_reg, "SVR rbf")
    add("mlp_classifier", MLPClassifier(hidden_layer_sizes=(32, 16), max_iter=400, random_state=10), x_cls, y_cls, test_cls,
        "MLPClassifier 12-32-16-3", zipmap=False)
    add("knn_classifier", KNeighborsClassifier(n_neighbors=5), x_iris, y_iris, test_iris, "KNeighborsClassifier k=5", zipmap=False)

    # Missing values imputed, then binarized features.
    x_missing = x_reg.copy()
    x_missing[rng.random(x_missing.shape) < 0.1] = np.nan
    test_missing = x_missing[::10].copy()
    add("imputer_binarizer_pipeline",
        Pipeline([("impute", SimpleImputer(strategy="median")), ("bin", Binarizer(threshold=0.1)), ("reg", LinearRegression())]),
        x_missing, y_reg, test_missing, "SimpleImputer(median) + Binarizer + LinearRegression")

    # A ColumnTransformer with one-hot encoded string categories beside scaled numbers.
    n = 400
    colors = rng.choice(["red", "green", "blue", "violet"], n)
    sizes = rng.choice(["S", "M", "L"], n)
    numbers = rng.normal(0, 1, (n, 3)).astype(np.float32)
    target = ((colors == "red") | (numbers[:, 0] > 0.5)).astype(np.int64) + (sizes == "L")
    pipeline = Pipeline([
        ("columns", ColumnTransformer([("onehot", OneHotEncoder(handle_unknown="ignore"), [0, 1])], remainder="drop")),
        ("clf", LogisticRegression(max_iter=500)),
    ])
    categories = np.stack([colors, sizes], 1)
    pipeline.fit(categories, target)
    model = convert_sklearn(pipeline, initial_types=[("cat", StringTensorType([None, 2]))], target_opset=OPSET,
                            options={id(pipeline.steps[-1][1]): {"zipmap": False}})
    test_categories = np.stack([np.array(["red", "blue", "green", "violet", "black", "red", "green", "blue"]),
                                np.array(["S", "M", "L", "M", "S", "XL", "L", "S"])], 1).astype(object)
    rows.append(save("column_transformer_onehot", model, {"cat": test_categories},
                     "ColumnTransformer: OneHotEncoder on strings (unknown ignored) + LogisticRegression"))

    mixed = Pipeline([
        ("columns", ColumnTransformer([("onehot", OneHotEncoder(handle_unknown="ignore"), ["color", "size"]),
                                       ("scale", StandardScaler(), ["a", "b", "c"])])),
        ("clf", RandomForestClassifier(n_estimators=25, max_depth=6, random_state=11)),
    ])
    import pandas as pd
    frame = pd.DataFrame({"color": colors, "size": sizes, "a": numbers[:, 0], "b": numbers[:, 1], "c": numbers[:, 2]})
    mixed.fit(frame, target)
    model = convert_sklearn(mixed, initial_types=[("color", StringTensorType([None, 1])), ("size", StringTensorType([None, 1])),
                                                  ("a", FloatTensorType([None, 1])), ("b", FloatTensorType([None, 1])),
                                                  ("c", FloatTensorType([None, 1]))], target_opset=OPSET)
    test = frame.iloc[::25]
    feeds = {"color": test[["color"]].values.astype(object), "size": test[["size"]].values.astype(object)}
    for column in "abc":
        feeds[column] = test[[column]].values.astype(np.float32)
    rows.append(save("column_transformer_mixed_forest", model, feeds,
                     "ColumnTransformer: OneHotEncoder on strings + StandardScaler on numbers, five inputs, RandomForestClassifier, ZipMap"))

    # DictVectorizer takes a map; onnxruntime does too, so the reference feeds one row.
    vectorizer = Pipeline([("dict", DictVectorizer(sparse=False)), ("reg", LinearRegression())])
    records = [{"a": float(v[0]), "b": float(v[1]), "c": float(v[2])} for v in numbers]
    vectorizer.fit(records, numbers @ np.array([1.0, -2.0, 0.5]))
    model = convert_sklearn(vectorizer, initial_types=[("features", DictionaryType(StringTensorType([1]), FloatTensorType([1])))],
                            target_opset=OPSET)
    rows.append(save("dict_vectorizer", model, {"features": {"a": 0.5, "c": -1.25, "unknown": 3.0}},
                     "DictVectorizer (a map input) + LinearRegression"))

    try:
        import lightgbm
        import xgboost
        from onnxmltools import convert_lightgbm, convert_xgboost
        from onnxmltools.convert.common.data_types import FloatTensorType as MLFloat

        xgb = xgboost.XGBClassifier(n_estimators=40, max_depth=4, random_state=12)
        xgb.fit(x_cls, y_cls)
        model = convert_xgboost(xgb, initial_types=[("X", MLFloat([None, x_cls.shape[1]]))], target_opset=15)
        rows.append(save("xgboost_classifier", model, {"X": test_cls}, f"XGBClassifier 3 classes x 40 (xgboost {xgboost.__version__})"))
        xgb_reg = xgboost.XGBRegressor(n_estimators=50, max_depth=5, random_state=12)
        xgb_reg.fit(x_reg, y_reg)
        model = convert_xgboost(xgb_reg, initial_types=[("X", MLFloat([None, x_reg.shape[1]]))], target_opset=15)
        rows.append(save("xgboost_regressor", model, {"X": test_reg}, "XGBRegressor 50 trees"))
        lgb = lightgbm.LGBMClassifier(n_estimators=40, num_leaves=15, random_state=13, verbose=-1)
        lgb.fit(x_bin, y_bin)
        model = convert_lightgbm(lgb, initial_types=[("X", MLFloat([None, x_bin.shape[1]]))], target_opset=15, zipmap=False)
        rows.append(save("lightgbm_binary", model, {"X": test_bin}, f"LGBMClassifier 2 classes x 40 (lightgbm {lightgbm.__version__})"))
        lgb_multi = lightgbm.LGBMClassifier(n_estimators=30, num_leaves=15, random_state=13, verbose=-1)
        lgb_multi.fit(x_cls, y_cls)
        model = convert_lightgbm(lgb_multi, initial_types=[("X", MLFloat([None, x_cls.shape[1]]))], target_opset=15)
        rows.append(save("lightgbm_multiclass", model, {"X": test_cls}, "LGBMClassifier 3 classes x 30, ZipMap"))
        lgb_reg = lightgbm.LGBMRegressor(n_estimators=50, num_leaves=20, random_state=13, verbose=-1)
        lgb_reg.fit(x_reg, y_reg)
        model = convert_lightgbm(lgb_reg, initial_types=[("X", MLFloat([None, x_reg.shape[1]]))], target_opset=15)
        rows.append(save("lightgbm_regressor", model, {"X": test_reg}, "LGBMRegressor 50 trees"))
    except ImportError as error:
        print(f"skipping XGBoost/LightGBM fixtures: {error}", file=sys.stderr)

    with open(os.path.join(OUT, "INDEX.tsv"), "w") as f:
        f.write("\n".join(rows) + "\n")
    import importlib.metadata as md
    with open(os.path.join(OUT, "VERSIONS.txt"), "w") as f:
        for package in ["scikit-learn", "skl2onnx", "onnxmltools", "xgboost", "lightgbm", "onnx", "onnxruntime", "numpy"]:
            try:
                f.write(f"{package}=={md.version(package)}\n")
            except md.PackageNotFoundError:
                pass


if __name__ == "__main__":
    main()
