"""terrainlab.classical — the classical algorithms of the book's chapter 10 as landscapes and walks on them:
least squares and its exact gradient-descent rate, logistic regression and its implicit bias, the hard-margin
SVM by the project's own QP, PCA / SVD geometry and effective rank, K-means (Lloyd) with Voronoi cells."""

from .kmeans import (
    KMeansResult,
    VoronoiGrid,
    WCSSGDResult,
    kmeans,
    lloyd_step,
    voronoi_grid,
    wcss,
    wcss_gd,
)
from .logistic import (
    ImplicitBiasPath,
    gd_logistic_regression,
    implicit_bias_path,
    logistic_grad,
    logistic_hessian,
    logistic_loss,
)
from .pca import PCAResult, SVDGeometry, effective_rank, pca, svd_geometry
from .regression import (
    gd_linear_regression,
    least_squares_hessian,
    least_squares_loss,
    ols,
    quadratic_rate,
)
from .svm import SVMResult, hard_margin_svm

__all__ = [
    "ols",
    "least_squares_loss",
    "least_squares_hessian",
    "gd_linear_regression",
    "quadratic_rate",
    "logistic_loss",
    "logistic_grad",
    "logistic_hessian",
    "gd_logistic_regression",
    "ImplicitBiasPath",
    "implicit_bias_path",
    "SVMResult",
    "hard_margin_svm",
    "PCAResult",
    "pca",
    "SVDGeometry",
    "svd_geometry",
    "effective_rank",
    "KMeansResult",
    "kmeans",
    "lloyd_step",
    "wcss",
    "WCSSGDResult",
    "wcss_gd",
    "VoronoiGrid",
    "voronoi_grid",
]
