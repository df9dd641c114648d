//! Every shipped loss, for listing and for evaluation by name.
