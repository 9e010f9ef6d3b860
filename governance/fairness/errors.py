"""Why the bias engine or a bias report refuses its input. Each error names the fields at
fault in `fields`."""

from governance.errors import DomainError, InvalidInput, NotFound


class ReportNotFound(NotFound):
    code = "bias_report_not_found"
    default_message = "No such bias report in this project."


class ModelNotLoadable(DomainError):
    """The version's model could not be loaded from MLflow, or cannot predict on the table."""

    code = "model_not_loadable"
    status = 400
    default_message = "The version's model could not be loaded from MLflow to predict."


class EmptyData(InvalidInput):
    code = "empty_data"
    default_message = "There are no predictions to assess."


class LengthMismatch(InvalidInput):
    code = "length_mismatch"
    default_message = "The labels, predictions and sensitive features differ in length."


class InvalidLabels(InvalidInput):
    """Missing labels, more than two classes, or a positive label that is not among them."""

    code = "invalid_labels"
    default_message = "The labels are not those of a binary classification."


class InvalidSensitiveFeatures(InvalidInput):
    code = "invalid_sensitive_features"
    default_message = "The sensitive features are not valid."


class InvalidParameter(InvalidInput):
    code = "invalid_parameter"
    default_message = "A parameter of the bias assessment is not valid."


class InvalidPolicy(InvalidInput):
    code = "invalid_fairness_policy"
    default_message = "The fairness policy is not valid."
