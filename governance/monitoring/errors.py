"""Why the drift engine refuses its input. Each error names the columns at fault in `fields`."""

from governance import errors
from governance.errors import Conflict, InvalidInput, NotFound


class ColumnsDiffer(InvalidInput):
    code = "columns_differ"
    default_message = "The reference and current data do not have the same columns."


class EmptyData(InvalidInput):
    code = "empty_data"
    default_message = "There is no data to compare."


class TypeMismatch(InvalidInput):
    code = "type_mismatch"
    default_message = "A column holds a different type of value in the current data."


class UnsupportedType(InvalidInput):
    code = "unsupported_type"
    default_message = "Drift is measured on numbers, text and booleans only."


class NoValues(InvalidInput):
    """Every value of a column is missing (or, in a numeric column, not a number)."""

    code = "no_values"
    default_message = "A column has no values to compare."


class InvalidParameter(InvalidInput):
    code = "invalid_parameter"
    default_message = "A parameter of the drift check is not valid."


class InvalidThresholds(InvalidInput):
    code = "invalid_thresholds"
    default_message = "The drift thresholds are not valid."


class LengthMismatch(InvalidInput):
    code = "length_mismatch"
    default_message = "The labels and the predictions differ in number."


# Monitors, batches and alerts


class MonitorNotFound(NotFound):
    code = "monitor_not_found"
    default_message = "No such monitor in this project."


class CheckNotFound(NotFound):
    code = "check_not_found"
    default_message = "No such drift check."


class AlertNotFound(NotFound):
    code = "alert_not_found"
    default_message = "No such drift alert."


class MonitorNameTaken(Conflict):
    code = "monitor_name_taken"
    default_message = "The project already has a monitor of that name."


class NotATable(InvalidInput):
    """A reference must be a table Quorum keeps: the data itself, not only its digest."""

    code = "not_a_table"
    default_message = "The reference is not a table Quorum keeps."


class AlertNotOpen(Conflict):
    code = "alert_not_open"
    default_message = "This alert has moved on; reload it."


class CommentRequired(errors.CommentRequired):
    default_message = "Say what was found or done: a comment is needed."


# Labels and model quality


class BatchNotFound(NotFound):
    code = "batch_not_found"
    default_message = "No such batch on this monitor."


class LabelsMismatch(InvalidInput):
    """Labels that cannot be matched to the batch's rows: counts, ids or columns differ."""

    code = "labels_mismatch"
    default_message = "The labels do not match the batch's rows."


class NoModelQuality(InvalidInput):
    """The monitor cannot measure its model: no task, label column or way to predict."""

    code = "no_model_quality"
    default_message = "This monitor does not measure model quality."


class PredictionFailed(InvalidInput):
    """The model version would not load or predict on the batch's rows."""

    code = "prediction_failed"
    default_message = "The model could not predict on this data."


class InvalidSource(InvalidInput):
    code = "invalid_source"
    default_message = "Give an http(s):// URL or a file:// path under QUORUM_DATA_ROOTS."


class NoBatchesInWindow(Conflict):
    code = "no_batches_in_window"
    default_message = "No batch arrived in the monitor's window: there is nothing to check."
