"""Models-from-code entry point of the discrete-opportunity (BG/BB) model."""

from mlflow.models import set_model

from models.opportunity_model import OpportunityModel

__all__: list[str] = []

set_model(OpportunityModel())
