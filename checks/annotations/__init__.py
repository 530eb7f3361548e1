"""The annotation knowledge base (``known.yaml``), the parsers that read values the way the
AWS controllers do, and the evaluator the annotation checks share."""

from checks.annotations.kb import AnnotationSpec, KnowledgeBase, knowledge_base

__all__ = ["AnnotationSpec", "KnowledgeBase", "knowledge_base"]
