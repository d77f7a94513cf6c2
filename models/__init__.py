"""Model code for clv-pipeline: fitted parameters as data, the CLV arithmetic and the MLflow pyfunc model.

Importable on its own (notebooks, serving) without the ``pipeline`` package.
"""

__all__: list[str] = []
