"""The notation appendix's worked example: one sum-form penalty, lambda = 10 (lambda_1 = 6,
lambda_2 = 4 for the elastic net), in each estimator's own parameter, on the diabetes data. Each
fit must satisfy the optimality conditions of the sum-form objective."""

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression, Ridge

LAM, LAM1, LAM2 = 10.0, 6.0, 4.0
X, y = load_diabetes(return_X_y=True)
X = (X - X.mean(axis=0)) / X.std(axis=0)
N = len(y)


def residual(model):
    return y - model.predict(X)


def test_the_worked_example_states_these_values():
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "book" / "notation.md").read_text(encoding="utf-8")
    example = page.split("### A worked example", 1)[1]
    assert f"{LAM / N:.5f}" in example and "| 0.1 |" in example and "0.6 |" in example
    assert f"$n = {N}$" in example


def test_ridge_alpha_is_the_sum_form_lambda():
    model = Ridge(alpha=LAM).fit(X, y)
    gradient = -X.T @ residual(model) + LAM * model.coef_  # of 1/2 |r|^2 + lambda/2 |w|^2
    assert np.abs(gradient).max() < 1e-8 * np.abs(X.T @ y).max()
    assert abs(residual(model).sum()) < 1e-8 * np.abs(y).sum()  # the intercept, unpenalized


def test_lasso_alpha_is_lambda_over_n():
    model = Lasso(alpha=LAM / N, tol=1e-12, max_iter=100_000).fit(X, y)
    correlation = X.T @ residual(model)  # KKT of 1/2 |r|^2 + lambda |w|_1
    active = model.coef_ != 0
    assert active.any()
    assert np.allclose(correlation[active], LAM * np.sign(model.coef_[active]), atol=1e-6 * LAM)
    assert np.all(np.abs(correlation[~active]) <= LAM * (1 + 1e-9))


def test_elastic_net_alpha_and_l1_ratio():
    model = ElasticNet(alpha=(LAM1 + LAM2) / N, l1_ratio=LAM1 / (LAM1 + LAM2), tol=1e-12,
                       max_iter=100_000).fit(X, y)
    # KKT of 1/2 |r|^2 + lambda_1 |w|_1 + lambda_2/2 |w|^2
    smooth = X.T @ residual(model) - LAM2 * model.coef_
    active = model.coef_ != 0
    assert active.any()
    assert np.allclose(smooth[active], LAM1 * np.sign(model.coef_[active]), atol=1e-6 * LAM1)
    assert np.all(np.abs(smooth[~active]) <= LAM1 * (1 + 1e-9))


def test_logistic_c_is_one_over_lambda():
    labels = (y > np.median(y)).astype(float)
    model = LogisticRegression(C=1 / LAM, tol=1e-12, max_iter=10_000).fit(X, labels)
    p = model.predict_proba(X)[:, 1]
    gradient = X.T @ (p - labels) + LAM * model.coef_.ravel()  # of sum log-loss + lambda/2 |w|^2
    assert np.abs(gradient).max() < 1e-5 * np.abs(X.T @ labels).max()
    assert abs((p - labels).sum()) < 1e-5 * N  # the intercept, unpenalized


def test_a_wrong_conversion_fails_the_same_conditions():
    """The checks above can fail: Lasso with alpha = lambda (the sum-form value) is far off."""
    model = Lasso(alpha=LAM, tol=1e-12, max_iter=100_000).fit(X, y)
    correlation = X.T @ residual(model)
    assert np.abs(correlation).max() > 2 * LAM
