from tests.serving.conftest import sklearn_model  # noqa: F401  (shared fixture)
