"""The explanation format every method shares (docs/design.md §2.1): the student's prompt and
target (`prompt`), steps and a teacher's solution rebuilt as steps (`steps`), answer families
and the answer reader (`answers`), and the records they produce (`records`).

It sits below the methods and the student / teacher layers, and imports none of them.
"""
