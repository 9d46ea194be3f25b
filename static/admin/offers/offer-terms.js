/* Offer forms in the admin (the Flow page's Offer inline and the Offer page): show only the term
 * fields of the selected kind.
 *
 * The kind <select> carries data-offer-terms, {kind: [term field names]}, from Offer.TERMS.
 * Without this script every term field shows; the form clears other kinds' terms on save either way.
 */
'use strict';
{
    function showTermsOf(select) {
        const terms = JSON.parse(select.dataset.offerTerms);
        const own = terms[select.value] || [];
        // One inline row on the Flow page, the whole form on the Offer page.
        const scope = select.closest('.inline-related') || select.form;
        const fieldsets = new Set();
        for (const name of new Set(Object.values(terms).flat())) {
            for (const row of scope.querySelectorAll('.form-row.field-' + name)) {
                // A field with an error stays in sight, or its error could be neither read nor fixed.
                row.classList.toggle('hidden', !own.includes(name) && !row.classList.contains('errors'));
                fieldsets.add(row.closest('fieldset'));
            }
        }
        // No kind chosen yet: no terms, so no empty "Terms" heading either.
        for (const fieldset of fieldsets) {
            fieldset.classList.toggle('hidden', !fieldset.querySelector('.form-row:not(.hidden)'));
        }
    }

    function showTermsWithin(root) {
        for (const select of root.querySelectorAll('select[data-offer-terms]')) {
            if (!select.closest('.empty-form')) {  // the template "Add another" copies
                showTermsOf(select);
            }
        }
    }

    document.addEventListener('change', (event) => {
        if (event.target.matches('select[data-offer-terms]')) {
            showTermsOf(event.target);
        }
    });
    document.addEventListener('formset:added', (event) => showTermsWithin(event.target));
    if (document.readyState === 'loading') {
        document.addEventListener('DOMContentLoaded', () => showTermsWithin(document));
    } else {
        showTermsWithin(document);
    }
}
