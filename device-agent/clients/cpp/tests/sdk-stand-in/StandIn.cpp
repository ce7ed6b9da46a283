// Stand-in written by avs-pair from the AVS Device SDK's documentation (see README.md here):
// the out-of-line members the SDK keeps in its RegistrationManager library.
#include <RegistrationManager/CustomerDataHandler.h>
#include <RegistrationManager/CustomerDataManager.h>

namespace alexaClientSDK {
namespace registrationManager {

CustomerDataHandler::CustomerDataHandler(std::shared_ptr<CustomerDataManager> customerDataManager)
        : m_dataManager(std::move(customerDataManager)) {
    if (m_dataManager) {
        m_dataManager->addDataHandler(this);
    }
}

CustomerDataHandler::~CustomerDataHandler() {
    if (m_dataManager) {
        m_dataManager->removeDataHandler(this);
    }
}

void CustomerDataManager::addDataHandler(CustomerDataHandler* handler) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_dataHandlers.insert(handler);
}

void CustomerDataManager::removeDataHandler(CustomerDataHandler* handler) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_dataHandlers.erase(handler);
}

void CustomerDataManager::clearData() {
    // As the SDK documents: handlers are called with the manager locked.
    std::lock_guard<std::mutex> lock(m_mutex);
    for (auto* h : m_dataHandlers) {
        h->clearData();
    }
}

}  // namespace registrationManager
}  // namespace alexaClientSDK
