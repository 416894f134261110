"""Reviews as data: reviewers' decisions recorded per model (from landed review files and from the record_review
job), and each scored day's final decisions with their override rates (see ``store``, ``final_decisions``,
``review_assets``)."""

from assets.review.review_assets import build_review_assets, final_decisions_key, reviews_key

__all__ = ["build_review_assets", "final_decisions_key", "reviews_key"]
