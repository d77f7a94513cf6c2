"""Models-from-code entry point: MLflow runs this file to build the pyfunc model when it loads."""

from mlflow.models import set_model

from models.pyfunc import CLVModel

__all__: list[str] = []

set_model(CLVModel())
