"""Models-from-code entry point of the subscription model: MLflow runs this file when it loads the model."""

from mlflow.models import set_model

from models.subscription_model import SubscriptionModel

__all__: list[str] = []

set_model(SubscriptionModel())
