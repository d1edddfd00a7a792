"""``dealtrail forget``: erase a contact's personal data by destroying its key.

Cheap to import: the engine is imported when the command runs. cli.main
loads this module when the command is first asked for.
"""

from __future__ import annotations

import click

from cli.main import State, load_rules, pass_state, rules_option


@click.command()
@click.argument("contact", metavar="CONTACT")
@rules_option
@pass_state
def forget(state: State, contact: str, rules_file: str | None) -> None:
    """Erase CONTACT's personal data: destroy their key (crypto-shredding).

    Needs encryption at rest (DEALTRAIL_KEY or DEALTRAIL_KEY_FILE). Their
    email, name, title, priorities, notes and the summaries of touchpoints
    they were on then read as erased everywhere, while the timeline keeps
    its shape; the views are rebuilt. Running it again changes nothing.
    Backups made before still hold the key (docs/security.md).

    Example: dealtrail forget jane.doe@example.com
    """
    from pydantic import TypeAdapter, ValidationError

    from engine.errors import InputError
    from engine.events import Contact
    from engine.importing.native import describe_validation_error
    from engine.privacy import ERASED_PREFIX
    from engine.privacy import forget as forget_contact

    try:
        # As every event's contact is checked: its length limit included.
        contact = TypeAdapter(Contact).validate_python(contact)
    except ValidationError as e:
        raise InputError(f"contact: {describe_validation_error(e)[1]}") from None
    rules = load_rules(rules_file)
    done = forget_contact(state.app(), contact, rules)
    if done.key_id is None:
        click.echo(
            f"{done.contact}: no key to destroy (already forgotten, or never "
            "recorded with encryption on); views rebuilt"
        )
    else:
        plural = "" if done.events == 1 else "s"
        click.echo(
            f"forgot {done.contact}: {done.events} event{plural} now read as "
            f"{ERASED_PREFIX}{done.key_id}; views rebuilt"
        )
    if not done.scrubbed:
        click.echo(
            "warning: a session that is still open kept an old copy of the "
            "destroyed key in the store's files; run forget again once it has "
            "ended (docs/security.md)",
            err=True,
        )
    if done.plaintext:
        plural = "" if done.plaintext == 1 else "s"
        click.echo(
            f"warning: {done.plaintext} event{plural} recorded before encryption "
            f"was turned on still name {done.contact} in plain text",
            err=True,
        )
